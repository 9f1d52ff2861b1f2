/**
 * Object lifetimes as the oracles see them: a driver object (an MR, an mmap entry) reports each
 * reference it hands out and takes back, and its free. The lifetime oracle checks that nothing
 * is used after the free, that the free happens once, and that no reference is outstanding
 * then (kref semantics, a usecount, or the lookups an SRCU grace period waits for).
 */
import { kernel } from './kernel.ts';

/** A driver object whose references and free are reported on the trace. */
export class Tracked {
  /** Unique name in reports, e.g. `mlx5_0/mr 0x1a01`. */
  readonly name: string;
  /** References outstanding (for the driver's own asserts and tests). */
  refs = 0;
  freed = false;

  constructor(name: string) {
    this.name = name;
  }

  /**
   * A reference is taken: by a `lookup` (kref_get_unless_zero from a table) or from one the
   * caller already holds (kref_get).
   */
  get(lookup = false): void {
    this.refs++;
    const k = kernel();
    if (k.trace.on) k.trace.emit('obj-get', { obj: this.name, lookup });
  }

  /** A reference is dropped. */
  put(): void {
    this.refs--;
    const k = kernel();
    if (k.trace.on) k.trace.emit('obj-put', { obj: this.name });
  }

  /**
   * The object is revoked (its owner removed it: an mmap entry after
   * rdma_user_mmap_entry_remove()): existing references stay valid and may be copied; a lookup
   * must no longer find it.
   */
  revoke(): void {
    const k = kernel();
    if (k.trace.on) k.trace.emit('obj-revoke', { obj: this.name });
  }

  /** The object is freed (kfree()). */
  free(): void {
    this.freed = true;
    const k = kernel();
    if (k.trace.on) k.trace.emit('obj-free', { obj: this.name });
  }
}
