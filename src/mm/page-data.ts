import { PAGE_SIZE } from './constants.ts';

const CHUNK = 512;
const CHUNKS = PAGE_SIZE / CHUNK;

/**
 * The bytes of one page, allocated in 512-byte chunks on first write so untouched memory
 * costs nothing and a page holding one integer costs one chunk. Reads of unwritten bytes are 0.
 */
export class PageData {
  private chunks: (Uint8Array | undefined)[] | null = null;

  /** Reads `len` bytes at `offset` into `out` at `outOffset`. */
  read(offset: number, out: Uint8Array, outOffset: number, len: number): void {
    for (let i = 0; i < len; ) {
      const off = offset + i;
      const c = (off / CHUNK) | 0;
      const within = off % CHUNK;
      const n = Math.min(len - i, CHUNK - within);
      const chunk = this.chunks?.[c];
      if (chunk === undefined) out.fill(0, outOffset + i, outOffset + i + n);
      else out.set(chunk.subarray(within, within + n), outOffset + i);
      i += n;
    }
  }

  /** Writes `len` bytes from `src` at `srcOffset` to `offset`. */
  write(offset: number, src: Uint8Array, srcOffset: number, len: number): void {
    this.chunks ??= new Array<Uint8Array | undefined>(CHUNKS);
    for (let i = 0; i < len; ) {
      const off = offset + i;
      const c = (off / CHUNK) | 0;
      const within = off % CHUNK;
      const n = Math.min(len - i, CHUNK - within);
      let chunk = this.chunks[c];
      if (chunk === undefined) {
        chunk = new Uint8Array(CHUNK);
        this.chunks[c] = chunk;
      }
      chunk.set(src.subarray(srcOffset + i, srcOffset + i + n), within);
      i += n;
    }
  }

  /** Copies every byte of `from` (copy_highpage()). */
  copyFrom(from: PageData): void {
    if (from.chunks === null) {
      this.chunks = null;
      return;
    }
    this.chunks = from.chunks.map((c) => (c === undefined ? undefined : c.slice()));
  }

  /** Zeroes the page (clear_highpage()); frees its chunks. */
  clear(): void {
    this.chunks = null;
  }

  /** Bytes of storage allocated, for memory accounting. */
  get allocatedBytes(): number {
    let n = 0;
    if (this.chunks !== null) for (const c of this.chunks) if (c !== undefined) n += CHUNK;
    return n;
  }
}
