import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isErrno } from '../../src/index.ts';
import {
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  VM_DONTDUMP,
  VM_DONTEXPAND,
  VM_IO,
  VM_PFNMAP,
} from '../../src/mm/constants.ts';
import { cpuReadU32, cpuWriteU32 } from '../../src/mm/cpu-access.ts';
import { mmput } from '../../src/mm/exit.ts';
import { fork } from '../../src/mm/fork.ts';
import { getUserPages } from '../../src/mm/gup.ts';
import type { Machine } from '../../src/mm/machine.ts';
import { mmap } from '../../src/mm/mmap.ts';
import { mremap } from '../../src/mm/mremap.ts';
import { munmap } from '../../src/mm/munmap.ts';
import type { Vma, VmOps } from '../../src/mm/vma.ts';
import { runMm } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const PAGES = 8;

/**
 * A device driver exposing PAGES frames of device memory (a BAR): ->mmap marks the VMA
 * VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP (not VM_DONTCOPY: fork duplicates it) and
 * installs vm ops whose ->fault maps the device pfn of the page. It counts every hook and
 * records, at each ->open and ->close, how many entries the VMA's range held.
 */
function testDevice(m: Machine) {
  const base = m.allocDevicePfns(PAGES);
  const log: string[] = [];
  const counts = { mmap: 0, open: 0, close: 0, fault: 0 };
  const entries = (vma: Vma) => vma.mm.addressesIn(vma.start, vma.end).length;
  const vmOps: VmOps = {
    name: 'testdev_vm_ops',
    *open(vma) {
      counts.open++;
      log.push(`open mm${vma.mm.id} ${vma.end - vma.start} entries=${entries(vma)}`);
    },
    *close(vma) {
      counts.close++;
      log.push(`close mm${vma.mm.id} ${vma.end - vma.start} entries=${entries(vma)}`);
    },
    *fault(vma, addr) {
      counts.fault++;
      return { pfn: base + vma.pageIndex(addr), writable: true };
    },
  };
  const file = m.createFile('testdev', {
    size: PAGES * PAGE_SIZE,
    ops: {
      *mmap(_f, vma) {
        counts.mmap++;
        vma.flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
        vma.ops = vmOps;
      },
    },
  });
  return { base, file, counts, log };
}

function readDevice(m: Machine, pfn: number): number {
  const b = new Uint8Array(4);
  m.deviceMemory(pfn).read(0, b, 0, 4);
  return new DataView(b.buffer).getInt32(0, true);
}

test('device VMA hooks: split, fork, mremap move, munmap and exit each open/close once per VMA', () => {
  let dev: ReturnType<typeof testDevice> | null = null;
  const r = runMm(function* (m) {
    const d = testDevice(m);
    dev = d;
    const parent = m.createMm();
    const a = yield* mmap(parent, {
      len: 4 * PAGE_SIZE,
      prot: RW,
      flags: MAP_SHARED,
      file: d.file,
    });
    assert.equal(d.counts.mmap, 1);
    assert.equal(parent.findVma(a)!.flags & (VM_IO | VM_PFNMAP), VM_IO | VM_PFNMAP);
    // CPU access goes to device memory, both ways.
    yield* cpuWriteU32(parent, a + PAGE_SIZE, 41);
    assert.equal(readDevice(m, d.base + 1), 41);
    const b = new Uint8Array([7, 0, 0, 0]);
    m.deviceMemory(d.base + 2).write(0, b, 0, 4);
    assert.equal(yield* cpuReadU32(parent, a + 2 * PAGE_SIZE), 7);
    assert.equal(parent.pte(a + PAGE_SIZE)!.kind, 'pfn');
    assert.equal(d.counts.fault, 2);
    // GUP has no struct page to return.
    yield* parent.mmapLock.downRead();
    try {
      yield* getUserPages(parent, a, 1);
      assert.fail('expected EFAULT');
    } catch (e) {
      assert.ok(isErrno(e, 'EFAULT'), String(e));
    } finally {
      parent.mmapLock.upRead();
    }
    // Partial munmap of the last page: the split opens the upper part, the unmap closes it.
    yield* munmap(parent, a + 3 * PAGE_SIZE, PAGE_SIZE);
    assert.deepEqual([d.counts.open, d.counts.close], [1, 1]);
    // fork duplicates the VMA: ->open runs once the pfn entries are copied (dup_mmap order).
    const child = yield* fork(parent);
    assert.deepEqual([d.counts.open, d.counts.close], [2, 1]);
    assert.equal(d.log.at(-1), `open mm${child.id} ${3 * PAGE_SIZE} entries=2`);
    assert.equal(child.pte(a + PAGE_SIZE)!.kind, 'pfn', 'pfn entries are copied as they are');
    assert.equal(yield* cpuReadU32(child, a + PAGE_SIZE), 41);
    assert.equal(d.counts.fault, 2, 'the child did not fault');
    // mremap move: the new VMA is opened, the old one closed.
    const to = a + 64 * PAGE_SIZE;
    const moved = yield* mremap(
      parent,
      a,
      3 * PAGE_SIZE,
      3 * PAGE_SIZE,
      MREMAP_MAYMOVE | MREMAP_FIXED,
      to,
    );
    assert.equal(moved, to);
    assert.deepEqual([d.counts.open, d.counts.close], [3, 2]);
    assert.equal(yield* cpuReadU32(parent, to + PAGE_SIZE), 41);
    // munmap closes; exit closes what is left, after its UNMAP zap.
    yield* munmap(parent, to, 3 * PAGE_SIZE);
    assert.deepEqual([d.counts.open, d.counts.close], [3, 3]);
    yield* mmput(child);
    assert.deepEqual([d.counts.open, d.counts.close], [3, 4]);
    assert.equal(d.log.at(-1), `close mm${child.id} ${3 * PAGE_SIZE} entries=0`);
    yield* mmput(parent);
    assert.equal(d.file.mappings.size, 0);
  });
  assert.equal(r.ok, true, r.bug?.message);
  const d = dev!;
  assert.equal(d.counts.mmap + d.counts.open, d.counts.close, 'every VMA closed exactly once');
});

test('device VMA: growing it with mremap is refused (VM_DONTEXPAND) and changes nothing', () => {
  const r = runMm(function* (m) {
    const d = testDevice(m);
    const mm = m.createMm();
    const a = yield* mmap(mm, { len: 2 * PAGE_SIZE, prot: RW, flags: MAP_SHARED, file: d.file });
    try {
      yield* mremap(mm, a, 2 * PAGE_SIZE, 4 * PAGE_SIZE, MREMAP_MAYMOVE);
      assert.fail('expected EFAULT');
    } catch (e) {
      assert.ok(isErrno(e, 'EFAULT'), String(e));
    }
    assert.equal(mm.vmas.length, 1);
    assert.equal(mm.vmas[0]!.end - mm.vmas[0]!.start, 2 * PAGE_SIZE);
    assert.deepEqual([d.counts.open, d.counts.close], [0, 0]);
    yield* mmput(mm);
    assert.deepEqual([d.counts.open, d.counts.close], [0, 1]);
  });
  assert.equal(r.ok, true, r.bug?.message);
});
