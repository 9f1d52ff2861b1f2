/**
 * A world of your own, built with odpsim's public API only.
 *
 * One process (an mm) and a tiny device that mirrors it. The device keeps its translations
 * coherent with a classic MMU notifier, the way KVM does: the notifier counts invalidations
 * (`mmu_invalidate_in_progress`, `mmu_invalidate_seq`), and a device fault commits a
 * translation only if no invalidation ran since it read the CPU page table. An `app` thread
 * mmaps a buffer, writes every page (CPU faults) and munmaps it, while a `device` thread
 * faults the same pages into the device.
 *
 * Run it:
 *
 *     node --import tsx examples/custom-world.ts                          # clean
 *     ODPSIM_EXAMPLE_BUG=1 node --import tsx examples/custom-world.ts     # finds the race
 *
 * With ODPSIM_EXAMPLE_BUG=1 the device forgets the sequence check. The explorer finds the
 * race, minimises the schedule and prints a replay token; the odpsim command replays it:
 *
 *     ODPSIM_EXAMPLE_BUG=1 odpsim replay <token> --world ./examples/custom-world.ts
 *
 * The module's default export (also exported as `world`) is the WorldBuilder `--world` loads.
 */
import { pathToFileURL } from 'node:url';
import {
  type Co,
  Completion,
  cpuWriteU32,
  type DeviceTranslation,
  explore,
  formatEvent,
  handleMmFault,
  installOracles,
  join,
  type Kernel,
  KernelBug,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  Machine,
  type Mm,
  MmuNotifier,
  mmap,
  mmgetNotZero,
  mmput,
  mmuNotifierRegister,
  mmuNotifierUnregister,
  munmap,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  registerOracle,
  replay,
  SecondaryMmu,
  SpinLock,
  snapshotPte,
  TraceRecorder,
  type WorldBuilder,
} from '../src/index.ts';

/** Pages of the buffer the app maps and the device mirrors. */
export const PAGES = 4;
/** Fault attempts of the device before it gives up on a page. */
const FAULT_TRIES = 8;

/** What one run of the world counted, for printing. */
export interface WorldStats {
  /** invalidate_range_start() calls the notifier saw. */
  readonly invalidations: number;
  /** Translations the device committed. */
  readonly deviceMaps: number;
  /** Device faults that started over because an invalidation ran meanwhile. */
  readonly retries: number;
}

/** Options of {@link customWorld}. */
export interface CustomWorldOptions {
  /** The device commits without checking the invalidation sequence: a race the oracles catch. */
  readonly bug?: boolean;
  /** Called at the end of each clean run. */
  readonly onEnd?: (stats: WorldStats) => void;
}

/**
 * A device page table kept coherent by a classic MMU notifier that counts invalidations
 * (KVM's protocol, reduced: see src/drivers/kvm/kvm-mirror.ts for the full one).
 */
class CountingMirror {
  readonly mm: Mm;
  /** The device page table; the coherence oracle watches it through its trace events. */
  readonly smmu = new SecondaryMmu('counter-dev');
  /** The driver lock: the notifier and the fault's commit serialise on it. */
  readonly lock = new SpinLock('counter_dev.lock');
  readonly notifier: MmuNotifier;
  /** Invalidations started and not yet ended. */
  inProgress = 0;
  /** Bumped when an invalidation ends. */
  seq = 0;
  invalidations = 0;
  deviceMaps = 0;
  retries = 0;
  private readonly bug: boolean;

  constructor(mm: Mm, bug: boolean) {
    this.mm = mm;
    this.bug = bug;
    const self = this;
    this.notifier = new MmuNotifier({
      // Zap the range before the CPU entries change, and keep faults from committing until
      // the end: a fault that read the old entry must not install it afterwards.
      *invalidateRangeStart(_sub, range) {
        yield* self.lock.lock();
        self.invalidations++;
        self.inProgress++;
        self.smmu.unmapRange(range.mm, range.start, range.end);
        self.lock.unlock();
        return 0;
      },
      *invalidateRangeEnd() {
        yield* self.lock.lock();
        self.seq++;
        self.inProgress--;
        self.lock.unlock();
      },
      // Unregistering (or the process exiting) while we still mirror it: drop everything.
      *release(_sub, mm) {
        yield* self.lock.lock();
        self.smmu.unmapAll(mm);
        self.lock.unlock();
      },
    });
  }

  /**
   * The device reads one word at `addr` through its page table, faulting the page in first
   * when it has no translation. False when the address is no longer mapped.
   */
  *read(addr: number): Co<boolean> {
    for (let i = 0; i < FAULT_TRIES; i++) {
      const t = this.smmu.lookup(this.mm, addr);
      if (t !== undefined) {
        this.smmu.access(this.mm, addr, false);
        return true;
      }
      if (!(yield* this.fault(addr))) return false;
      // The fault's translation may already be gone: an invalidation took it. Look again.
      yield;
    }
    return false;
  }

  /**
   * The device fault: sample the sequence, read the CPU entry (faulting the page in, as
   * get_user_pages would), then commit under the lock unless an invalidation ran meanwhile
   * (mmu_invalidate_retry()). False when the address is not mapped.
   */
  private *fault(addr: number): Co<boolean> {
    const mm = this.mm;
    for (let i = 0; i < FAULT_TRIES; i++) {
      const seq = this.seq;
      let snap: DeviceTranslation | null = null;
      yield* mm.mmapLock.downRead();
      try {
        if (mm.findVma(addr) === undefined) return false;
        if (mm.pte(addr)?.kind !== 'page') yield* handleMmFault(mm, addr, false);
        const pte = mm.pte(addr);
        if (pte?.kind === 'page') snap = snapshotPte(pte);
      } finally {
        mm.mmapLock.upRead();
      }
      // Between the walk and the lock an invalidation may run: the snapshot is then stale.
      yield* this.lock.lock();
      const stale = !this.bug && (this.inProgress > 0 || this.seq !== seq);
      if (snap !== null && !stale) {
        this.smmu.map(mm, addr, { ...snap, writable: false });
        this.deviceMaps++;
      }
      this.lock.unlock();
      if (snap !== null && !stale) return true;
      this.retries++;
    }
    return false;
  }
}

/**
 * The world: a Machine with every oracle installed, one address space, the counting mirror,
 * and two threads. `app` registers the notifier, mmaps, writes each page and munmaps; then,
 * once the device is done, unregisters and drops the mm with mmput(). `device` reads every
 * page through the mirror.
 */
export function customWorld(options: CustomWorldOptions = {}): WorldBuilder {
  return (k: Kernel): void => {
    const machine = new Machine(k, { frames: 64 });
    installOracles(k, machine);
    const mm = machine.createMm();
    const mirror = new CountingMirror(mm, options.bug ?? false);
    const mapped = new Completion('buffer_mapped');
    let base = 0;

    // A check of our own: every start the notifier saw was ended, and the munmap was seen.
    registerOracle(k, {
      name: 'counting',
      description: 'the notifier saw the munmap, and every invalidation it saw ended',
      rules: ['counting'],
      checks: () => mirror.invalidations,
    });
    k.onQuiescence(() => {
      if (mirror.invalidations === 0 || mirror.inProgress !== 0)
        throw new KernelBug(
          'counting',
          `${mirror.invalidations} invalidations seen, ${mirror.inProgress} still in progress`,
        );
      options.onEnd?.({
        invalidations: mirror.invalidations,
        deviceMaps: mirror.deviceMaps,
        retries: mirror.retries,
      });
    });

    const device = k.spawn('device', function* () {
      yield* mapped.wait();
      // The device holds an mm_users reference while it uses the mm, as drivers do.
      if (!mmgetNotZero(mm)) return;
      try {
        for (let i = 0; i < PAGES; i++) yield* mirror.read(base + i * PAGE_SIZE);
      } finally {
        yield* mmput(mm);
      }
    });

    k.spawn('app', function* () {
      yield* mmuNotifierRegister(mirror.notifier, mm);
      const len = PAGES * PAGE_SIZE;
      const addr = yield* mmap(mm, {
        len,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS,
      });
      base = addr;
      mapped.complete();
      // Each first write is a CPU fault; a page the device read first is copied on write.
      for (let i = 0; i < PAGES; i++) yield* cpuWriteU32(mm, addr + i * PAGE_SIZE, i + 1);
      yield* munmap(mm, addr, len);
      yield* join(device);
      yield* mmuNotifierUnregister(mirror.notifier, mm);
      mirror.smmu.retire();
      // The reference createMm() gave us: forget it and the leak oracle fails the run.
      yield* mmput(mm);
    });
  };
}

/** The world `--world ./examples/custom-world.ts` loads: buggy when ODPSIM_EXAMPLE_BUG=1. */
export const world: WorldBuilder = customWorld({ bug: process.env.ODPSIM_EXAMPLE_BUG === '1' });
export default world;

/** The trace events that tell the story of a counterexample. */
const STORY = new Set(['mmu-start', 'mmu-end', 'pte-set', 'pte-clear', 'page-free', 'dev-map']);

/** Explores the world, and on a failure replays its token. Returns the exit status. */
export function main(log: (line: string) => void = console.log): number {
  const bug = process.env.ODPSIM_EXAMPLE_BUG === '1';
  const seen: { last: WorldStats | null } = { last: null };
  const build = customWorld({ bug, onEnd: (s) => (seen.last = s) });
  // State the strategy, seed and budget: the same three always give the same result.
  const r = explore(build, { strategy: 'random', seed: 1, runs: 1000, minimise: true });
  log(`explored ${r.runs} schedules (random, seed 1): ${r.steps} steps, stopped by ${r.stoppedBy}`);
  const f = r.failure;
  if (f === null) {
    const s = seen.last;
    if (s !== null)
      log(
        `last run: ${s.invalidations} invalidations, ${s.deviceMaps} device maps, ${s.retries} retries`,
      );
    log('clean');
    return 0;
  }
  log(`run ${f.run}: ${f.bug.message}`);
  log(
    `minimised from ${f.original.preemptions} preemptions (${f.original.steps} steps) to ${f.preemptions} (${f.steps} steps)`,
  );
  // The token holds the run's seed and every scheduling decision: replay reruns it exactly.
  // A recorder on the replayed kernel shows what happened, event by event.
  let rec: TraceRecorder | undefined;
  const again = replay(build, f.token, { onKernel: (k) => (rec = new TraceRecorder(k.trace)) });
  log(`replayed: ${again.result.bug?.rule ?? 'no bug'} after ${again.result.steps} steps`);
  for (const e of rec?.events ?? [])
    if (STORY.has(e.type)) log(`  ${formatEvent(e, (id) => rec!.taskName(id))}`);
  log(`token: ${f.token}`);
  log(
    `replay it: ODPSIM_EXAMPLE_BUG=1 odpsim replay ${f.token} --world ./examples/custom-world.ts`,
  );
  return 1;
}

// Run only when executed, not when imported (by a test, or by `odpsim --world`).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href)
  process.exitCode = main();
