// The notifier, HMM and device calls of the property: classic and interval notifiers,
// hmm_range_fault, the HMM test device, ftruncate, SVA bind/unbind/DMA/page requests.
import {
  Dmirror,
  DmirrorDevice,
  HMM_DMIRROR_READ,
  HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_WRITE,
  hmmRange,
  hmmRangeFault,
  iommuSvaBindDevice,
  iommuSvaHandleIopf,
  iommuSvaUnbindDevice,
  MmuNotifier,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuNotifierGet,
  mmuNotifierPut,
  mmuNotifierRegister,
  mmuNotifierUnregister,
  PAGE_SIZE,
  svaDma,
  truncateFile,
} from '../../src/index.ts';
import { type Call, call, mmWords, PARTIAL, show, WALK_LIMIT_PAGES } from './api-call.ts';
import type { Command } from './api-commands.ts';
import { isIndex, resolveAddr, resolveLen, World } from './api-world.ts';
import { unsizedHmmRange } from './awaiting-fix.ts';

const P = PAGE_SIZE;

/** The notifier, device and SVA commands. */
export function planDevice(w: World, c: Command): Call | null {
  switch (c.op) {
    case 'register': {
      const mm = w.mmSlot(c.mm).mm;
      // Register again a subscriber that was unregistered, or a new one.
      const old = World.pick(
        w.classic.filter((s) => !s.registered),
        c.sub,
      );
      const slot = old ?? { sub: new MmuNotifier(w.classicOps), mm: null, registered: false };
      return call(
        'mmu_notifier_register',
        ['notifier', ...mmWords(mm)],
        [],
        () => mmuNotifierRegister(slot.sub, mm),
        {
          commit: () => {
            if (old === undefined) w.classic.push(slot);
            slot.mm = mm;
            slot.registered = true;
          },
        },
      );
    }
    case 'unregister': {
      // Unregistering twice drops an mm_count reference twice: a refcount bug, not bad input.
      const slot = World.pick(
        w.classic.filter((s) => s.registered),
        c.sub,
      );
      if (slot === undefined) return null;
      return call(
        'mmu_notifier_unregister',
        ['notifier'],
        [],
        () => mmuNotifierUnregister(slot.sub, slot.mm!),
        {
          commit: () => {
            slot.registered = false;
          },
        },
      );
    }
    case 'get': {
      const mm = w.mmSlot(c.mm).mm;
      const ops = c.alloc ? w.getOps : w.noAllocOps;
      return call(
        'mmu_notifier_get',
        ['mmu_notifier_get', ...mmWords(mm)],
        [],
        () => mmuNotifierGet(ops, mm),
        {
          commit: (sub) => {
            const slot = w.got.find((s) => s.sub === sub);
            if (slot === undefined) w.got.push({ sub: sub as MmuNotifier, refs: 1 });
            else slot.refs++;
          },
        },
      );
    }
    case 'put': {
      // mmu_notifier_put() without a reference is a WARN by design, not bad input.
      const slot = World.pick(
        w.got.filter((s) => s.refs > 0),
        c.sub,
      );
      if (slot === undefined) return null;
      return call('mmu_notifier_put', ['notifier'], [], () => mmuNotifierPut(slot.sub), {
        commit: () => {
          slot.refs--;
        },
      });
    }
    case 'insert': {
      const mm = w.mmSlot(c.mm).mm;
      const old = c.sub < w.intervals.length ? w.intervals[c.sub]! : null;
      const [start, length] = [resolveAddr(mm, c.start), resolveLen(c.length)];
      let slot = old;
      return call(
        'mmu_interval_notifier_insert',
        ['interval', ...mmWords(mm)],
        [start, length],
        function* () {
          slot ??= w.newInterval();
          yield* mmuIntervalNotifierInsert(
            slot.sub,
            mm,
            start as number,
            length as number,
            slot.sub.ops,
          );
        },
        {
          commit: () => {
            slot!.inserted = true;
          },
        },
      );
    }
    case 'remove': {
      // Removing a removed subscription is EINVAL: part of the property.
      const slot = World.pick(w.intervals, c.sub);
      if (slot === undefined) return null;
      return call(
        'mmu_interval_notifier_remove',
        ['interval'],
        [],
        () => mmuIntervalNotifierRemove(slot.sub),
        {
          commit: () => {
            slot.inserted = false;
          },
        },
      );
    }
    case 'hmm': {
      const mm = w.mmSlot(c.mm).mm;
      const slot = World.pick(
        w.intervals.filter((s) => s.inserted && s.sub.mm === mm),
        c.sub,
      );
      if (slot === undefined) return null;
      const start = resolveAddr(mm, c.start);
      const len = resolveLen(c.len);
      const end = c.len.k === 'pages' && isIndex(start) ? start + (len as number) : len;
      // hmm_range_fault() walks every page of its range, mapped or not.
      if (isIndex(start) && isIndex(end) && end - start > WALK_LIMIT_PAGES * P) return null;
      if (unsizedHmmRange(start, end)) return null;
      const flags = { fault: c.fault, write: c.write };
      return call(
        'hmm_range_fault',
        ['hmm_range', 'hmmRange'],
        [start, end],
        function* () {
          const seq = yield* mmuIntervalReadBegin(slot.sub);
          const range = hmmRange(slot.sub, seq, start as number, end as number, flags);
          yield* mm.mmapLock.downRead();
          try {
            yield* hmmRangeFault(mm, range);
          } finally {
            mm.mmapLock.upRead();
          }
          return range;
        },
        {
          range: isIndex(start) && isIndex(end) ? [start, end] : null,
          partial: (code) => PARTIAL.has(code),
        },
      );
    }
    default:
      return planDriver(w, c);
  }
}

/** The HMM test device and SVA commands. */
function planDriver(w: World, c: Command): Call | null {
  switch (c.op) {
    case 'device':
      return call(
        'DmirrorDevice',
        ['hmm_dmirror'],
        [c.index],
        function* () {
          return new DmirrorDevice(w.machine, c.index as number);
        },
        { commit: (dev) => w.devices.push(dev as DmirrorDevice) },
      );
    case 'open': {
      const mm = w.mmSlot(c.mm).mm;
      const dev = World.pick(w.devices, c.dev)!;
      return call(
        'Dmirror.open',
        [dev.name, 'interval', ...mmWords(mm)],
        [],
        () => Dmirror.open(dev, mm),
        {
          commit: (d) => w.mirrors.push({ d: d as Dmirror, open: true }),
        },
      );
    }
    case 'ioctl': {
      const slot = World.pick(w.mirrors, c.mirror);
      if (slot === undefined) return null;
      const addr = resolveAddr(slot.d.mm, c.addr);
      const n = c.npages;
      const per = c.request === HMM_DMIRROR_SNAPSHOT ? 1 : P;
      const fits = isIndex(n) && n <= 64 ? n * per : P;
      const ptr =
        c.buf === 'none' ? null : new Uint8Array(c.buf === 'short' ? Math.max(0, fits - 1) : fits);
      const cmd = { addr, ptr, npages: n, cpages: 0, faults: 0 } as never;
      const copies = c.request === HMM_DMIRROR_READ || c.request === HMM_DMIRROR_WRITE;
      return call(
        'Dmirror.ioctl',
        [],
        [c.request, addr, n],
        () => slot.d.ioctl(c.request as number, cmd),
        {
          returnsErrno: true,
          // READ and WRITE fault the range in 32-page chunks and keep what they faulted.
          partial: (code) => copies && c.buf === 'fit' && PARTIAL.has(code),
        },
      );
    }
    case 'close': {
      // Closing twice is EBADF: part of the property.
      const slot = World.pick(w.mirrors, c.mirror);
      if (slot === undefined) return null;
      return call('Dmirror.close', [slot.d.pt.name], [], () => slot.d.close(), {
        commit: () => {
          slot.open = false;
        },
      });
    }
    case 'truncate': {
      const file = { rw: w.rw, ro: w.ro, dev: w.devices[0]!.file }[c.file];
      return call('truncateFile', ['ftruncate', file.name], [c.size], () =>
        truncateFile(file, c.size as number),
      );
    }
    case 'bind': {
      const mm = w.mmSlot(c.mm).mm;
      const dev = `sva${w.bonds.length}`;
      return call(
        'iommuSvaBindDevice',
        ['iommu_sva_bind_device', ...mmWords(mm)],
        [],
        () => iommuSvaBindDevice(dev, mm),
        {
          commit: (bond) => w.bonds.push(bond as never),
        },
      );
    }
    case 'unbind': {
      // Unbinding twice is EINVAL: part of the property.
      const bond = World.pick(w.bonds, c.bond);
      if (bond === undefined) return null;
      return call('iommuSvaUnbindDevice', ['iommu_sva_unbind_device', bond.dev], [], () =>
        iommuSvaUnbindDevice(bond),
      );
    }
    case 'dma':
    case 'iopf': {
      const bond = World.pick(w.bonds, c.bond);
      if (bond === undefined) return null;
      const addr = resolveAddr(bond.mm, c.addr);
      if (c.op === 'iopf')
        return call(
          'iommuSvaHandleIopf',
          ['iommu_sva_handle_iopf', bond.dev],
          [addr],
          () => iommuSvaHandleIopf(bond, addr as number, c.write),
          {
            check: (r) => (r === 'success' || r === 'invalid' ? null : `returned ${show(r)}`),
          },
        );
      return call(
        'svaDma',
        ['svaDma', bond.dev],
        [addr],
        () => svaDma(bond, addr as number, c.write),
        {
          // A DMA faults its page in through a page request (PRI), as a CPU access does.
          partial: (code) => PARTIAL.has(code),
          check: (ok) => (typeof ok === 'boolean' ? null : `returned ${show(ok)}, not a boolean`),
        },
      );
    }
    default:
      throw new Error(`unplanned command ${(c as Command).op}`);
  }
}
