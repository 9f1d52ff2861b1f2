// What a user thread sees when it touches device memory it mapped (spec mmap-io.md I6), checked
// at every touch of the mmap-io-unplug scenario.

import { observe } from '../check/observations.ts';
import type { UverbsFile } from '../drivers/rdma/core/uverbs.ts';
import { CLOCK_VALUE } from '../drivers/rdma/hw/mlx5/mmap.ts';
import type { Kernel } from '../kernel/kernel.ts';
import type { Co } from '../kernel/task.ts';
import { hex, PAGE_SIZE, VM_MAYWRITE, VM_PFNMAP, VM_WRITE } from '../mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../mm/cpu-access.ts';
import { isSigbus } from '../mm/fault.ts';
import type { Mm } from '../mm/mm.ts';

/** What the touches share: the kernel, whether disassociation is over, and a check count. */
export interface TouchWorld {
  readonly k: Kernel;
  /** A disassociation of every file returned (hot unplug, or a driver's revoke). */
  revoked: boolean;
  checks: number;
}

/** One mapping of device memory a process made: a name for messages, its address and pages. */
export interface IoMapping {
  readonly name: string;
  readonly addr: number;
  readonly pages: number;
}

/** A read, then (where the VMA is writable) a write, of every page of `m` still mapped in `mm`. */
export function* touchMapping(w: TouchWorld, mm: Mm, m: IoMapping, token: number): Co {
  for (let i = 0; i < m.pages; i++) {
    const addr = m.addr + i * PAGE_SIZE;
    yield* touchPage(w, mm, `${m.name} page ${i} (${hex(addr)}) of mm${mm.id}`, addr, false, token);
    const vma = mm.findVma(addr);
    if (vma !== undefined && vma.flags & VM_WRITE)
      yield* touchPage(
        w,
        mm,
        `${m.name} page ${i} (${hex(addr)}) of mm${mm.id}`,
        addr,
        true,
        token,
      );
  }
}

/**
 * One access, checked against I6: a VMA the file tracks never gets SIGBUS; an untracked one
 * (its ->open zapped it) always does; once disassociation returned, a read-only VMA reads the
 * zero page and a writable one reaches its file's one dummy page. Before that a read-only
 * (clock) page reads the device's value or, already zapped, the zero page.
 */
function* touchPage(
  w: TouchWorld,
  mm: Mm,
  what: string,
  addr: number,
  write: boolean,
  token: number,
): Co {
  const vma = mm.findVma(addr);
  if (vma === undefined || !(vma.flags & VM_PFNMAP)) return;
  const after = w.revoked;
  const tracked = vma.privateData !== null;
  const readOnly = !(vma.flags & (VM_WRITE | VM_MAYWRITE));
  const ufile = vma.file?.privateData as UverbsFile;
  let got: number | 'SIGBUS';
  try {
    if (write) {
      yield* cpuWriteU32(mm, addr, token);
      got = token;
    } else got = yield* cpuReadU32(mm, addr);
  } catch (e) {
    if (!isSigbus(e)) throw e;
    got = 'SIGBUS';
  }
  // No yield from the access to here: the entry checked is the one the access used.
  w.checks++;
  const access = write ? 'write to' : 'read of';
  const fail = (want: string) =>
    w.k.bug(
      'io-semantics',
      `${access} ${what}: ${got === 'SIGBUS' ? 'SIGBUS' : `got ${hex(got)}`}, expected ${want}`,
    );
  const phase = after ? 'after disassociation' : 'before disassociation ended';
  if (!tracked) {
    if (got !== 'SIGBUS')
      fail(
        `SIGBUS (the VMA is untracked, so nothing may back it; it reached ${reached(mm, addr, ufile)})`,
      );
    return report(w.k, `untracked copy, ${write ? 'write' : 'read'}: SIGBUS`);
  }
  if (got === 'SIGBUS') fail(after ? substitute(readOnly) : 'the device memory or its substitute');
  const kind = readOnly ? 'read-only mapping' : 'writable mapping';
  const line = `${kind}, ${write ? 'write' : 'read'} ${phase}: ${reached(mm, addr, ufile)}`;
  if (readOnly) {
    if (got !== 0 && (after || got !== CLOCK_VALUE))
      fail(after ? substitute(true) : `${hex(CLOCK_VALUE)} or 0`);
    return report(w.k, line);
  }
  if (after && mm.pte(addr)?.page !== ufile.disassociatePage) fail(substitute(false));
  report(w.k, line);
}

const reported = new WeakMap<Kernel, Set<string>>();

/** Reports, once per kind of outcome, what an access that passed its check reached. */
function report(k: Kernel, line: string): void {
  let lines = reported.get(k);
  if (lines === undefined) {
    lines = new Set();
    reported.set(k, lines);
  }
  if (lines.has(line)) return;
  lines.add(line);
  observe(k, line);
}

/** What the entry at `addr` maps, for the report. */
function reached(mm: Mm, addr: number, ufile: UverbsFile): string {
  const pte = mm.pte(addr);
  if (pte?.kind === 'pfn') return 'the device';
  if (pte?.page === mm.machine.phys.zeroPage) return 'the zero page';
  if (pte?.page === ufile.disassociatePage) return "the file's dummy page";
  return 'another page';
}

function substitute(readOnly: boolean): string {
  return readOnly
    ? 'the zero page (a read-only VMA after disassociation)'
    : "the file's dummy page (a writable VMA after disassociation)";
}
