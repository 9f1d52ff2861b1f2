// Harness for the ported hmm-tests: a kernel, a machine, the oracles, device 0, and helpers
// that move whole pages of 32-bit ints between the CPU and a mirror buffer.

import assert from 'node:assert/strict';
import { installOracles } from '../../src/check/oracles/install.ts';
import { DmirrorDevice } from '../../src/drivers/dmirror/device.ts';
import { Dmirror } from '../../src/drivers/dmirror/dmirror.ts';
import { HMM_DMIRROR_MIGRATE_TO_DEV, type HmmDmirrorCmd } from '../../src/drivers/dmirror/uapi.ts';
import { type Co, Kernel, type KernelOptions, type RunResult } from '../../src/index.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/constants.ts';
import { cpuRead, cpuWrite } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { Machine } from '../../src/mm/machine.ts';
import type { Mm } from '../../src/mm/mm.ts';

/** N = HMM_BUFFER_SIZE / PAGE_SIZE. */
export const N = 1024;
export const INTS_PER_PAGE = PAGE_SIZE / 4;

/** The fixture of one TEST_F: its process, device and open mirror. */
export interface Fixture {
  readonly k: Kernel;
  readonly machine: Machine;
  readonly mm: Mm;
  readonly device: DmirrorDevice;
  readonly dmirror: Dmirror;
}

/** Runs `body` as the test process: open hmm_dmirror0, run, assert close() == 0, exit. */
export function hmmTest(body: (f: Fixture) => Co<void>, options: KernelOptions = {}): RunResult {
  const k = new Kernel({ maxSteps: 5_000_000, ...options });
  const machine = new Machine(k, { frames: 8 * N });
  installOracles(k, machine);
  const device = new DmirrorDevice(machine, 0);
  const mm = machine.createMm();
  k.spawn('test', function* () {
    const dmirror = yield* Dmirror.open(device, mm);
    yield* body({ k, machine, mm, device, dmirror });
    yield* dmirror.close();
    yield* mmput(mm);
  });
  return k.run();
}

/** A mirror buffer of `npages` pages (user memory the device copies to and from). */
export function mirrorBuffer(npages: number): Uint8Array {
  return new Uint8Array(npages * PAGE_SIZE);
}

/** The command block for `npages` at `addr`. */
export function cmd(addr: number, ptr: Uint8Array, npages: number): HmmDmirrorCmd {
  return { addr, ptr, npages, cpages: 0, faults: 0 };
}

/** The buffer as ints (little-endian, like x86-64 and every platform Node runs on here). */
function ints(buf: Uint8Array): Int32Array {
  return new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength >> 2);
}

/** Int i of a byte buffer. */
export function intAt(buf: Uint8Array, i: number): number {
  return ints(buf)[i]!;
}

/** Fills a byte buffer's ints with f(i). */
export function fillInts(
  buf: Uint8Array,
  f: (i: number) => number,
  from = 0,
  to = buf.length / 4,
): void {
  const v = ints(buf);
  for (let i = from; i < to; i++) v[i] = f(i);
}

/** CPU writes ints f(i) to pages [fromPage, toPage) of the buffer at `addr`, a page per step. */
export function* cpuFillInts(
  mm: Mm,
  addr: number,
  fromPage: number,
  toPage: number,
  f: (i: number) => number,
): Co {
  const page = new Uint8Array(PAGE_SIZE);
  for (let p = fromPage; p < toPage; p++) {
    fillInts(page, (j) => f(p * INTS_PER_PAGE + j));
    yield* cpuWrite(mm, addr + p * PAGE_SIZE, page);
  }
}

/** CPU reads pages [fromPage, toPage) and returns the first int i where g(i) differs, or -1. */
export function* cpuCheckInts(
  mm: Mm,
  addr: number,
  fromPage: number,
  toPage: number,
  g: (i: number) => number,
): Co<number> {
  for (let p = fromPage; p < toPage; p++) {
    const words = ints(yield* cpuRead(mm, addr + p * PAGE_SIZE, PAGE_SIZE));
    for (let j = 0; j < INTS_PER_PAGE; j++) {
      const i = p * INTS_PER_PAGE + j;
      if (words[j] !== g(i)) return i;
    }
  }
  return -1;
}

/** The first int i of `buf` in [from, to) where g(i) differs, or -1. */
export function firstMismatch(
  buf: Uint8Array,
  g: (i: number) => number,
  from = 0,
  to = buf.length / 4,
): number {
  const v = ints(buf);
  for (let i = from; i < to; i++) if (v[i] !== g(i)) return i;
  return -1;
}

/** CPU writes `bytes` at `addr`, a page per step (the whole buffer must be page sized). */
export function* cpuWriteBytes(mm: Mm, addr: number, bytes: Uint8Array): Co {
  for (let off = 0; off < bytes.length; off += PAGE_SIZE) {
    yield* cpuWrite(mm, addr + off, bytes.subarray(off, off + PAGE_SIZE));
  }
}

const patterns = new Map<number, Uint8Array>();

/** N pages of ints k + c, built once per c (a test fixture, not simulated memory). */
export function pattern(c: number): Uint8Array {
  let p = patterns.get(c);
  if (p === undefined) {
    p = mirrorBuffer(N);
    fillInts(p, (i) => i + c);
    patterns.set(c, p);
  }
  return p;
}

/** Read/write protection, and private anonymous memory: the mappings the selftests use. */
export const RW = PROT_READ | PROT_WRITE;
export const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
/** The selftests' int patterns: ptr[k] = k, and its negation. */
export const id = (i: number) => i;
export const neg = (i: number) => -i;

/** The run ended without a bug (the message of the one it met, otherwise). */
export function ok(r: { ok: boolean; bug: { message: string } | null }): void {
  assert.equal(r.ok, true, r.bug?.message);
}

/** The kind of entry that maps each page of [addr, addr + n pages) ('none' for no entry). */
export function kinds(mm: Mm, addr: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => mm.pte(addr + i * PAGE_SIZE)?.kind ?? 'none');
}

/** M2D(npages) at ptr → 0, cpages npages; returns the read-back. */
export function* migrateToDevice(d: Dmirror, ptr: number, npages: number): Co<Uint8Array> {
  const mirror = mirrorBuffer(npages);
  const c = cmd(ptr, mirror, npages);
  assert.equal(yield* d.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, c), 0);
  assert.equal(c.cpages, npages);
  return mirror;
}
