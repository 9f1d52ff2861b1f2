/**
 * struct dmirror: one open of an HMM test device (lib/test_hmm.c). It mirrors the address
 * space of the process that opened it into a device page table through an interval notifier
 * over the whole address space, and serves the READ, WRITE, SNAPSHOT and FLAGS commands.
 */

import { kernel } from '../../kernel/kernel.ts';
import { Mutex } from '../../kernel/sync/mutex.ts';
import { WaitQueue } from '../../kernel/sync/wait-queue.ts';
import type { Co } from '../../kernel/task.ts';
import { Errno, isErrno } from '../../lib/errors.ts';
import { PAGE_SIZE } from '../../mm/constants.ts';
import type { Mm } from '../../mm/mm.ts';
import {
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalSetSeq,
} from '../../mm/mmu-interval-notifier.ts';
import { MmuIntervalNotifier } from '../../mm/mmu-interval-notifier-types.ts';
import type { MmuNotifierRange } from '../../mm/mmu-notifier-types.ts';
import { SecondaryMmu } from '../../mm/secondary-mmu.ts';
import type { DmirrorDevice } from './device.ts';
import { dmirrorCheckExclusive, dmirrorExclusive } from './exclusive.ts';
import { dmirrorMigrateToDevice, dmirrorMigrateToSystem } from './migrate.ts';
import { dmirrorRead, dmirrorWrite } from './read-write.ts';
import { dmirrorSnapshot } from './snapshot.ts';
import {
  HMM_DMIRROR_CHECK_EXCLUSIVE,
  HMM_DMIRROR_EXCLUSIVE,
  HMM_DMIRROR_FLAGS,
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_MIGRATE_TO_SYS,
  HMM_DMIRROR_READ,
  HMM_DMIRROR_RELEASE,
  HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_WRITE,
  type HmmDmirrorCmd,
} from './uapi.ts';

/** [0, ULONG_MAX & PAGE_MASK) in the model's address width. */
const WHOLE_SPACE = Number.MAX_SAFE_INTEGER + 1 - PAGE_SIZE;

/**
 * struct dmirror: one open of the HMM test device (dmirror_fops_open()). Its interval notifier
 * covers the opener's whole address space; `ioctl` serves the HMM_DMIRROR_* commands.
 */
export class Dmirror {
  readonly device: DmirrorDevice;
  /** The mirrored address space: the opener's. */
  readonly mm: Mm;
  /** dmirror->pt: the device page table (read-only or WRITE entries), watched by the oracles. */
  readonly pt: SecondaryMmu;
  /** dmirror->mutex: protects pt and pairs with the notifier sequence. */
  readonly mutex: Mutex;
  readonly notifier: MmuIntervalNotifier;
  /** dmirror->flags (HMM_DMIRROR_FLAG_*). */
  flags = 0;
  /**
   * This mirror's migrations in progress, and a generation bumped (under the mutex) when one
   * begins, ends or is invalidated: they leave the table and the notifier sequence alone, so a
   * fault of this mirror that raced one finds out here instead (see {@link ownMigrationRaced}).
   */
  readonly ownRanges: { start: number; end: number }[] = [];
  ownGeneration = 0;
  /** Where faults wait for an own migration of their range to end (as read_begin waits). */
  readonly ownDone = new WaitQueue('dmirror-own-migration');
  private closed = false;

  private constructor(device: DmirrorDevice, mm: Mm) {
    this.device = device;
    this.mm = mm;
    const id = ++device.opens;
    this.pt = new SecondaryMmu(`${device.name}#${id}`);
    this.mutex = new Mutex(`${device.name}#${id}.mutex`, 'dmirror.mutex');
    this.notifier = new MmuIntervalNotifier({
      client: 'dmirror',
      invalidate: (sub, range, cur) => this.invalidate(sub, range, cur),
    });
  }

  /**
   * dmirror_fops_open(): a new mirror of `mm` (the opener's address space) with an interval
   * notifier over all of it. The caller runs in the process, holding an mm_users reference.
   */
  static *open(device: DmirrorDevice, mm: Mm): Co<Dmirror> {
    const d = new Dmirror(device, mm);
    yield* mmuIntervalNotifierInsert(d.notifier, mm, 0, WHOLE_SPACE, d.notifier.ops);
    return d;
  }

  /**
   * dmirror_fops_release(): stops mirroring. The device table is emptied first, under the
   * mutex, then the notifier is removed (Linux removes first and frees the table after; with
   * the fd closing nobody uses the table in between, and emptying it first keeps every
   * translation covered by a live notifier).
   */
  *close(): Co {
    if (this.closed) throw new Errno('EBADF', `${this.pt.name} is already closed`);
    this.closed = true;
    yield* this.mutex.lock();
    this.pt.unmapAll(this.mm);
    this.mutex.unlock();
    yield* mmuIntervalNotifierRemove(this.notifier);
    // The device's pages in use, of any address space, go back to system memory: a later CPU
    // fault on one would otherwise look for this mirror.
    yield* this.device.devmem.evictAll();
  }

  /**
   * dmirror_fops_unlocked_ioctl(): the preamble (alignment and overflow checks, EINVAL), then
   * the command. Returns 0 or a negative errno; cpages and faults are copied back only on
   * success, as the user-space wrapper sees them.
   */
  *ioctl(request: number, cmd: HmmDmirrorCmd): Co<number> {
    if (this.closed) return -9; // EBADF
    const local = { ...cmd, cpages: 0, faults: 0 };
    try {
      const bad = preamble(local);
      if (bad !== null) throw bad;
      yield* this.dispatch(request, local);
    } catch (e) {
      if (isErrno(e)) return -e.errno;
      throw e;
    }
    cmd.cpages = local.cpages;
    cmd.faults = local.faults;
    return 0;
  }

  private *dispatch(request: number, cmd: HmmDmirrorCmd): Co {
    switch (request) {
      case HMM_DMIRROR_READ:
        return yield* dmirrorRead(this, cmd);
      case HMM_DMIRROR_WRITE:
        return yield* dmirrorWrite(this, cmd);
      case HMM_DMIRROR_SNAPSHOT:
        return yield* dmirrorSnapshot(this, cmd);
      case HMM_DMIRROR_FLAGS:
        this.flags = cmd.npages;
        return;
      case HMM_DMIRROR_MIGRATE_TO_DEV:
        return yield* dmirrorMigrateToDevice(this, cmd);
      case HMM_DMIRROR_MIGRATE_TO_SYS:
        return yield* dmirrorMigrateToSystem(this, cmd);
      case HMM_DMIRROR_RELEASE:
        return yield* this.device.devmem.removeChunks();
      case HMM_DMIRROR_EXCLUSIVE:
        return yield* dmirrorExclusive(this, cmd);
      case HMM_DMIRROR_CHECK_EXCLUSIVE:
        return yield* dmirrorCheckExclusive(this, cmd);
      default:
        throw new Errno('EINVAL', `${this.device.name}: unknown request ${request}`);
    }
  }

  /**
   * dmirror_interval_invalidate(): a MIGRATE invalidation of this mirror's own migration keeps
   * the table (the migration updates it) but bumps the own generation, so racing faults retry
   * (Linux's skips any with its device as owner: see the mutant); otherwise it takes the mutex
   * (trylock when the range is not blockable), sets the sequence and erases the entries of
   * [start >> PAGE_SHIFT, end >> PAGE_SHIFT] (inclusive: one page more, harmlessly).
   */
  private *invalidate(sub: MmuIntervalNotifier, range: MmuNotifierRange, cur: number): Co<boolean> {
    const k = kernel();
    if (range.event === 'MIGRATE' && range.owner === this.device) {
      // Mutant: Linux's dmirror returns here for any migration with its device as owner, so a
      // fault of this mirror that snapshot the range before the migration commits the page it
      // replaced (found by sweeping dmirror-race with migrate=1), and another open of the
      // device keeps its entries.
      if (k.mutant('dmirror.own-migrate-blinds-fault')) return true;
      if (this.ownRanges.some((r) => r.start <= range.start && range.end <= r.end)) {
        if (range.blockable) yield* this.mutex.lock();
        else if (!this.mutex.tryLock()) return false;
        this.ownGeneration++;
        this.mutex.unlock();
        return true;
      }
    }
    const sleepsAnyway = k.mutant('dmirror.nonblock-mutex');
    if (range.blockable || sleepsAnyway) yield* this.mutex.lock();
    else if (!this.mutex.tryLock()) return false;
    if (k.mutant('dmirror.zap-after-unlock')) {
      // Mutant: the entries are erased by deferred work, after the callback has returned.
      mmuIntervalSetSeq(sub, cur);
      this.mutex.unlock();
      const self = this;
      k.spawn(`${this.pt.name}-zap`, function* () {
        yield;
        yield* self.mutex.lock();
        self.erase(range);
        self.mutex.unlock();
      });
      return true;
    }
    if (!k.mutant('dmirror.set-seq-outside-lock')) mmuIntervalSetSeq(sub, cur);
    this.erase(range);
    this.mutex.unlock();
    // Mutant: the sequence is set after the mutex is dropped, so a fault can commit between.
    if (k.mutant('dmirror.set-seq-outside-lock')) {
      yield;
      mmuIntervalSetSeq(sub, cur);
    }
    return true;
  }

  /**
   * Waits until no own migration overlaps [start, end), then returns the own generation: a
   * fault's snapshot taken after this is stale if the generation moves before it commits.
   */
  *ownMigrationBegin(start: number, end: number): Co<number> {
    const overlaps = () => this.ownRanges.some((r) => r.start < end && start < r.end);
    if (overlaps() && !kernel().mutant('dmirror.own-migrate-blinds-fault'))
      yield* this.ownDone.waitEvent(() => !overlaps());
    return this.ownGeneration;
  }

  /** Whether an own migration began, ended or was invalidated since `gen` (mutex held). */
  ownMigrationRaced(gen: number): boolean {
    return gen !== this.ownGeneration && !kernel().mutant('dmirror.own-migrate-blinds-fault');
  }

  /** dmirror_do_update(): erases the device entries of the range (and one page more). */
  private erase(range: MmuNotifierRange): void {
    this.pt.unmapRange(
      this.mm,
      range.start,
      Math.min(range.end + PAGE_SIZE, Number.MAX_SAFE_INTEGER),
    );
  }
}

/** The ioctl preamble: page-aligned addr, and addr + npages·PAGE_SIZE must exceed addr. */
function preamble(cmd: HmmDmirrorCmd): Errno | null {
  if (!Number.isSafeInteger(cmd.addr) || cmd.addr < 0 || cmd.addr % PAGE_SIZE !== 0) {
    return new Errno('EINVAL', `address ${String(cmd.addr)} is not page aligned`);
  }
  if (
    !Number.isSafeInteger(cmd.npages) ||
    cmd.npages <= 0 ||
    cmd.npages > (Number.MAX_SAFE_INTEGER - cmd.addr) / PAGE_SIZE
  ) {
    return new Errno('EINVAL', `npages ${String(cmd.npages)} is zero or overflows the address`);
  }
  if (!(cmd.ptr instanceof Uint8Array)) return new Errno('EFAULT', 'ptr is not a buffer');
  return null;
}
