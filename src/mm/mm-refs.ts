import { bug, kernel } from '../kernel/kernel.ts';
import type { Mm } from './mm.ts';

/** mmgrab(): keeps the mm_struct (not its pages) alive. */
export function mmgrab(mm: Mm): void {
  if (mm.count <= 0) bug('use-after-free', `mmgrab on mm${mm.id} whose mm_count is ${mm.count}`);
  mm.count++;
}

/** mmdrop(): the last reference frees the mm_struct and its notifier subscriptions. */
export function mmdrop(mm: Mm): void {
  if (mm.count <= 0)
    bug('use-after-free', `mmdrop on mm${mm.id} whose mm_count is already ${mm.count}`);
  if (--mm.count > 0) return;
  if (mm.notifiers !== null && mm.notifiers.list.length > 0) {
    bug('warn', `__mmdrop of mm${mm.id} with classic notifiers still linked`);
  }
  mm.notifiers = null;
  const k = kernel();
  if (k.trace.on) k.trace.emit('mm-free', { mm: mm.id });
}

/** mmget(): keeps the address space alive; the caller must already hold a user reference. */
export function mmget(mm: Mm): void {
  if (mm.users <= 0) bug('use-after-free', `mmget on mm${mm.id} with no users (use mmgetNotZero)`);
  mm.users++;
}

/** mmget_not_zero(): takes a user reference unless the address space is exiting. */
export function mmgetNotZero(mm: Mm): boolean {
  if (mm.users <= 0) return false;
  mm.users++;
  return true;
}
