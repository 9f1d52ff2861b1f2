import { PAGE_SIZE } from './constants.ts';

const CHUNK = 512;
const CHUNKS = PAGE_SIZE / CHUNK;
/**
 * Zeroed flat pages kept from freed frames for the next page to be written in full. A fresh
 * 4 KiB typed array costs an off-heap allocation and a finaliser; an explorer run that writes
 * a thousand pages and frees them at exit would pay that on every run. The contents are zeroed
 * before reuse, so nothing observable depends on which buffer a page gets.
 */
const spareFlat: Uint8Array[] = [];
const MAX_SPARE_FLAT = 2048;

/** A zeroed 4 KiB page buffer, spare if there is one. */
function takeFlat(): Uint8Array {
  return spareFlat.pop() ?? new Uint8Array(PAGE_SIZE);
}

/**
 * The bytes of one page, allocated on first write so untouched memory costs nothing: a write
 * of a few bytes allocates one 512-byte chunk; a write of half a page or more switches the page
 * to one flat 4 KiB array. Reads of unwritten bytes are 0.
 */
export class PageData {
  private chunks: (Uint8Array | undefined)[] | null = null;
  private flat: Uint8Array | null = null;

  /** Reads `len` bytes at `offset` into `out` at `outOffset`. */
  read(offset: number, out: Uint8Array, outOffset: number, len: number): void {
    if (this.flat !== null) {
      out.set(this.flat.subarray(offset, offset + len), outOffset);
      return;
    }
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
    if (this.flat === null && len >= PAGE_SIZE / 2) this.flatten();
    if (this.flat !== null) {
      this.flat.set(src.subarray(srcOffset, srcOffset + len), offset);
      return;
    }
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

  /** Switches to one flat array, keeping the contents. */
  private flatten(): void {
    const flat = takeFlat();
    if (this.chunks !== null) {
      for (let c = 0; c < CHUNKS; c++) {
        const chunk = this.chunks[c];
        if (chunk !== undefined) flat.set(chunk, c * CHUNK);
      }
    }
    this.flat = flat;
    this.chunks = null;
  }

  /** Copies every byte of `from` (copy_highpage()). */
  copyFrom(from: PageData): void {
    if (from === this) return;
    this.clear();
    if (from.flat !== null) {
      this.flat = takeFlat();
      this.flat.set(from.flat);
    }
    this.chunks =
      from.chunks === null
        ? null
        : from.chunks.map((c) => (c === undefined ? undefined : c.slice()));
  }

  /** Zeroes the page (clear_highpage()); frees its storage. */
  clear(): void {
    const flat = this.flat;
    if (flat !== null && spareFlat.length < MAX_SPARE_FLAT) {
      flat.fill(0);
      spareFlat.push(flat);
    }
    this.chunks = null;
    this.flat = null;
  }

  /** Bytes of storage allocated, for memory accounting. */
  get allocatedBytes(): number {
    if (this.flat !== null) return PAGE_SIZE;
    let n = 0;
    if (this.chunks !== null) for (const c of this.chunks) if (c !== undefined) n += CHUNK;
    return n;
  }
}
