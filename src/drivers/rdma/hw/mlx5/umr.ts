/**
 * UMR: translation updates through the device's UMR queue (mlx5_ib_update_mtt of the 2014
 * design; mlx5_ib_update_xlt later). The work request is posted and waited for; the MTT
 * entries change when it executes. Updates of one mkey must not overlap (the hardware needs
 * them fenced), which the serialization oracle checks.
 */
import { spend } from '../../../../cost/charge.ts';
import { mightSleep } from '../../../../kernel/context.ts';
import type { Co } from '../../../../kernel/task.ts';
import { PAGE_SIZE } from '../../../../mm/constants.ts';
import type { Mlx5Mr } from './mr.ts';

/**
 * mlx5_ib_update_mtt(): rewrites the MTT entries [startIdx, startIdx + npages) of an ODP MR
 * from the umem's slots (with their READ/WRITE bits), or clears them with `zap`. Returns the
 * number of entries that held a translation before (for the invalidation counters).
 */
export function* mlx5UpdateMtt(
  mr: Mlx5Mr,
  startIdx: number,
  npages: number,
  zap: boolean,
): Co<number> {
  mightSleep('mlx5_ib_update_mtt');
  const umem = mr.odp;
  const tt = mr.tt;
  tt.beginUpdate();
  yield* spend('mlx5.umr', npages);
  let dropped = 0;
  for (let i = startIdx; i < startIdx + npages; i++) {
    const addr = umem.start + i * PAGE_SIZE;
    const slot = umem.slots.get(i);
    if (zap || slot === undefined) {
      dropped += tt.unmapRange(mr.mm, addr, addr + PAGE_SIZE);
      continue;
    }
    // The device writes only where the entry's WRITE bit and the mkey's access rights both
    // allow it: a snapshot gives the entry the CPU entry's right whatever the MR's
    // (umem_dma_to_mtt()), and the mkey keeps a read-only MR read-only.
    const writable = slot.write && tt.regionWritable;
    tt.map(mr.mm, addr, { pfn: slot.page.pfn, gen: slot.gen, writable });
  }
  tt.endUpdate();
  return dropped;
}

/**
 * The zap pass of an invalidation: the MTT entries of [lo, hi) that hold a translation are
 * cleared with one UMR per run of mapped slots. Returns how many were cleared.
 */
export function* mlx5ZapMapped(mr: Mlx5Mr, lo: number, hi: number): Co<number> {
  const umem = mr.odp;
  let dropped = 0;
  let run = -1;
  const first = Math.floor((lo - umem.start) / PAGE_SIZE);
  const last = Math.ceil((hi - umem.start) / PAGE_SIZE);
  for (let i = first; i <= last; i++) {
    const mapped = i < last && umem.slots.has(i);
    if (mapped && run < 0) run = i;
    if (!mapped && run >= 0) {
      dropped += yield* mlx5UpdateMtt(mr, run, i - run, true);
      run = -1;
    }
  }
  return dropped;
}
