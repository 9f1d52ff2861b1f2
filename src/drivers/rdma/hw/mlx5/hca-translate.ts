/**
 * The modelled HCA's address translation and DMA: resolving a byte range of a message through
 * lkeys or an rkey (the key's mkey, its PD and access rights, its bounds), then through the
 * MTT of an ODP MR (a missing or read-only entry is a page fault) or the pages of a pinned MR,
 * and the DMA itself. Checks and accesses of one packet happen in one step, as the hardware
 * does them between two UMR completions.
 */
import { PAGE_SIZE } from '../../../../mm/constants.ts';
import type { PageData } from '../../../../mm/page-data.ts';
import { IB_ACCESS_LOCAL_WRITE, type IbWcStatus } from '../../core/ib-verbs.ts';
import type { IbPd, IbSge } from '../../core/objects.ts';
import type { Mlx5Device } from './main.ts';
import { type Mlx5Mr, mlx5MkeyLookup } from './mr.ts';
import { MLX5_IMR_MTT_SIZE } from './odp-implicit.ts';

/** One contiguous piece of a transfer inside one MR. */
export interface Piece {
  readonly mr: Mlx5Mr;
  readonly addr: number;
  readonly len: number;
}

/** A resolved range, or why it is not. */
export type Translation =
  | { readonly kind: 'ok'; readonly pieces: readonly Piece[] }
  | { readonly kind: 'fault'; readonly mr: Mlx5Mr; readonly addr: number }
  | { readonly kind: 'error'; readonly status: IbWcStatus };

const error = (status: IbWcStatus): Translation => ({ kind: 'error', status });

/**
 * The pieces of message bytes [offset, offset + n) through a scatter/gather list of lkeys: a
 * key that does not resolve, belongs to another PD, lacks LOCAL_WRITE for a write or does not
 * cover the element is a local protection error.
 */
export function translateLocal(
  dev: Mlx5Device,
  pd: IbPd,
  sgList: readonly IbSge[],
  offset: number,
  n: number,
  write: boolean,
): Translation {
  const pieces: Piece[] = [];
  let at = 0;
  for (const sge of sgList) {
    const lo = Math.max(offset, at);
    const hi = Math.min(offset + n, at + sge.length);
    at += sge.length;
    if (hi <= lo) continue;
    const mr = mlx5MkeyLookup(dev, sge.lkey);
    if (mr === null || mr.pd !== pd || !mr.covers(sge.addr, sge.length))
      return error('LOC_PROT_ERR');
    if (write && (mr.access & IB_ACCESS_LOCAL_WRITE) === 0) return error('LOC_PROT_ERR');
    const piece = { mr, addr: sge.addr + (lo - (at - sge.length)), len: hi - lo };
    const miss = firstMiss(piece, write);
    if (miss !== null) return { kind: 'fault', mr, addr: miss };
    pieces.push(piece);
  }
  return { kind: 'ok', pieces };
}

/**
 * [va, va + n) through an rkey with the remote right `right` (IB_ACCESS_REMOTE_*): a key that
 * does not resolve, belongs to another PD, lacks the right or the range is a remote access
 * error.
 */
export function translateRemote(
  dev: Mlx5Device,
  pd: IbPd,
  rkey: number,
  va: number,
  n: number,
  right: number,
  write: boolean,
): Translation {
  const mr = mlx5MkeyLookup(dev, rkey);
  if (mr === null || mr.pd !== pd || (mr.access & right) === 0 || !mr.covers(va, n))
    return error('REM_ACCESS_ERR');
  const piece = { mr, addr: va, len: n };
  const miss = firstMiss(piece, write);
  return miss === null ? { kind: 'ok', pieces: [piece] } : { kind: 'fault', mr, addr: miss };
}

/**
 * The MR whose MTT translates `addr` of `mr`: itself, or for an implicit parent the child its
 * KSM entry names (null: the null mkey).
 */
function leafOf(mr: Mlx5Mr, addr: number): Mlx5Mr | null {
  if (mr.implicit === null) return mr;
  return mr.implicit.ksm.get(Math.floor(addr / MLX5_IMR_MTT_SIZE)) ?? null;
}

/** The first page of an ODP piece without a (writable, for a write) MTT entry, or null. */
function firstMiss(p: Piece, write: boolean): number | null {
  if (!p.mr.isOdp) return null;
  const end = p.addr + p.len;
  for (let a = p.addr - (p.addr % PAGE_SIZE); a < end; a += PAGE_SIZE) {
    const leaf = leafOf(p.mr, a);
    const t = leaf?.tt.lookup(leaf.mm, a);
    if (t === undefined || (write && !t.writable)) return a;
  }
  return null;
}

/** Calls `fn` on each page-sized chunk of the pieces with the frame's bytes, reporting the DMA. */
function eachChunk(
  pieces: readonly Piece[],
  write: boolean,
  fn: (data: PageData, within: number, at: number, len: number) => void,
): void {
  let at = 0;
  for (const p of pieces) {
    for (let done = 0; done < p.len; ) {
      const addr = p.addr + done;
      const within = addr % PAGE_SIZE;
      const len = Math.min(p.len - done, PAGE_SIZE - within);
      fn(frameData(p.mr, addr - within, write), within, at, len);
      done += len;
      at += len;
    }
  }
}

/** The bytes of the frame behind a page of an MR, reporting the access to the oracles. */
function frameData(mr: Mlx5Mr, page: number, write: boolean): PageData {
  const machine = mr.dev.machine;
  if (mr.isOdp) {
    const leaf = leafOf(mr, page)!;
    leaf.tt.access(leaf.mm, page, write);
    const t = leaf.tt.lookup(leaf.mm, page)!;
    return machine.phys.page(t.pfn)!.data;
  }
  const umem = mr.umem;
  if (umem.kind !== 'pinned') throw new Error('unreachable: ODP handled above');
  const i = (page - umem.start) / PAGE_SIZE;
  const frame = umem.pages[i]!;
  mr.tt.dma(frame.pfn, umem.gens[i]!, write);
  return frame.data;
}

/** DMA read of the pieces into a new buffer. */
export function dmaRead(pieces: readonly Piece[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  eachChunk(pieces, false, (data, within, at, len) => data.read(within, out, at, len));
  return out;
}

/** DMA write of `bytes` over the pieces. */
export function dmaWrite(pieces: readonly Piece[], bytes: Uint8Array): void {
  eachChunk(pieces, true, (data, within, at, len) => data.write(within, bytes, at, len));
}
