import { installOracles } from '../check/oracles/install.ts';
import { DmirrorDevice } from '../drivers/dmirror/device.ts';
import { Dmirror } from '../drivers/dmirror/dmirror.ts';
import { KvmMirror } from '../drivers/kvm/kvm-mirror.ts';
import { NouveauSvmm } from '../drivers/nouveau/svm.ts';
import { delay, join, sleep } from '../kernel/context.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { Completion } from '../kernel/sync/completion.ts';
import type { Task } from '../kernel/task.ts';
import { isErrno } from '../lib/errors.ts';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../mm/constants.ts';
import { cpuWriteU32 } from '../mm/cpu-access.ts';
import { mmput } from '../mm/exit.ts';
import { Machine } from '../mm/machine.ts';
import { madvise } from '../mm/madvise.ts';
import { mmdrop, mmgrab } from '../mm/mm-refs.ts';
import { mmap } from '../mm/mmap.ts';
import { oomReap } from '../mm/oom-reaper.ts';
import { paramOf, type Scenario, type ScenarioParams } from './scenario.ts';

/** MAX_OOM_REAP_RETRIES (mm/oom_kill.c): attempts before the reaper gives up on an mm. */
const MAX_OOM_REAP_RETRIES = 10;
/** schedule_timeout_idle(HZ/10) between two reaping attempts, ns. */
const REAP_RETRY_NS = 100_000_000;
/** Virtual time between two CPU writes of the process, ns (well above the faults' costs). */
const CPU_NS = 600;
/** Virtual time between two GPU accesses, ns. */
const GPU_NS = 800;

const param = (p: ScenarioParams, name: string) => paramOf('itree-nonblock-leak', p, name);

/**
 * `itree-nonblock-leak`: the OOM reaper against a process whose GPU mirrors it through nouveau
 * SVM, which puts a classic notifier (refusing every non-blockable start) and per-fault
 * interval notifiers on the same mm. See docs/findings/itree-nonblock-leak.md.
 *
 * Tasks: `process` maps `vmas` private mappings of `pages` pages, writes each page, creates
 * the SVM address space, then writes pages and drops every third one (MADV_DONTNEED; `touches`
 * at most) until it is killed, lingers `linger` ns, closes its DRM client (nouveau_svmm_fini)
 * and exits (mmput). `gpu` makes `touches` accesses at PRNG-chosen pages (alternately reads and
 * writes), each faulting through a transient interval notifier when the GPU has no entry.
 * `oom-reaper` kills the process after `kill` ns and reaps its mm up to `reaps` times, HZ/10
 * apart, while a VMA is refused.
 *
 * With `dmirror=1` the process also has the HMM test device open, an interval subscription over
 * its whole address space, removed when the file is released after exit_mm() (as 5.5-5.12's
 * i915 userptr next to any interval user). With `kvm=1` it also runs a KVM-style VM (a `vcpu`
 * task touching its pages), a classic subscriber with an end, which the core must end when
 * nouveau refuses (c2655835fd8c). With `fix=1` the notifier core ends the interval side when a
 * classic subscriber refuses (the proposed fix).
 */
export const itreeNonblockLeakScenario: Scenario = {
  name: 'itree-nonblock-leak',
  description:
    'the OOM reaper against nouveau SVM: a refused non-blockable start leaves the interval side open (fix=1 ends it)',
  finding: { rule: 'liveness', doc: 'docs/findings/itree-nonblock-leak.md', clean: { fix: 1 } },
  params: [
    { name: 'pages', description: 'pages per mapping', default: 4, min: 1, max: 4096 },
    {
      name: 'vmas',
      description: 'private mappings (the reaper starts one invalidation per VMA)',
      default: 2,
      min: 1,
      max: 64,
    },
    {
      name: 'touches',
      description:
        "GPU accesses (alternately read and write); also bounds the process's writes and discards before the kill, and with kvm=1 the vCPU's accesses",
      default: 6,
      min: 0,
      max: 100_000,
    },
    {
      name: 'kill',
      description: 'virtual ns from the start of the work to the OOM kill',
      default: 1000,
      min: 0,
      max: 1_000_000_000,
    },
    {
      name: 'linger',
      description:
        'virtual ns the process lingers after its last write (the kill ends its writes) before it closes its GPU client and exits',
      default: 2000,
      min: 0,
      max: 1_000_000_000,
    },
    {
      name: 'reaps',
      description: `reaping attempts, 100 ms apart, until one reaps every VMA or the process has exited, so more than one matters only when the process lives 100 ms past the kill (a long linger, or the leak of fix=0 keeping it from exiting); the kernel's MAX_OOM_REAP_RETRIES is ${MAX_OOM_REAP_RETRIES}`,
      default: 2,
      min: 1,
      max: MAX_OOM_REAP_RETRIES,
    },
    {
      name: 'dmirror',
      description: '1: the process also has the HMM test device open (an interval subscription)',
      default: 0,
      min: 0,
      max: 1,
    },
    {
      name: 'kvm',
      description: '1: the process also runs a KVM-style VM (a classic subscriber with an end)',
      default: 0,
      min: 0,
      max: 1,
    },
    {
      name: 'fix',
      description: '1: end the interval side when a classic start is refused (proposed fix)',
      default: 0,
      min: 0,
      max: 1,
    },
  ],
  build(k: Kernel, p: ScenarioParams): void {
    buildLeak(k, {
      pages: param(p, 'pages'),
      vmas: param(p, 'vmas'),
      touches: param(p, 'touches'),
      kill: param(p, 'kill'),
      linger: param(p, 'linger'),
      reaps: param(p, 'reaps'),
      dmirror: param(p, 'dmirror') === 1,
      kvm: param(p, 'kvm') === 1,
      fix: param(p, 'fix') === 1,
    });
  },
};

interface LeakParams {
  readonly pages: number;
  readonly vmas: number;
  readonly touches: number;
  readonly kill: number;
  readonly linger: number;
  readonly reaps: number;
  readonly dmirror: boolean;
  readonly kvm: boolean;
  readonly fix: boolean;
}

function buildLeak(k: Kernel, p: LeakParams): void {
  const machine = new Machine(k, {
    frames: p.vmas * p.pages + 8,
    unwindItreeOnRefusal: p.fix,
  });
  installOracles(k, machine);
  const mm = machine.createMm();
  const ready = new Completion('ready');
  const kvm = p.kvm ? new KvmMirror(k, mm) : null;
  const bases: number[] = [];
  let svmm: NouveauSvmm | null = null;
  let killed = false;
  const pageAddr = (i: number) => bases[Math.floor(i / p.pages)]! + (i % p.pages) * PAGE_SIZE;

  k.spawn('process', function* () {
    for (let v = 0; v < p.vmas; v++) {
      bases.push(
        yield* mmap(mm, {
          len: p.pages * PAGE_SIZE,
          prot: PROT_READ | PROT_WRITE,
          flags: MAP_PRIVATE | MAP_ANONYMOUS,
        }),
      );
    }
    for (let i = 0; i < p.vmas * p.pages; i++) yield* cpuWriteU32(mm, pageAddr(i), i + 1);
    const mirror = p.dmirror ? yield* Dmirror.open(new DmirrorDevice(machine, 0), mm) : null;
    svmm = yield* NouveauSvmm.init(mm);
    if (kvm !== null) yield* kvm.register();
    ready.completeAll();
    // Until the kill lands (the return to user space), the process keeps writing its pages and
    // now and then drops one (blockable invalidations for the GPU's inserts to race); the bound
    // keeps every schedule finite (one that never runs the reaper included).
    for (let i = 0; i < p.touches && !killed; i++) {
      yield* delay(CPU_NS);
      const addr = pageAddr(i % (p.vmas * p.pages));
      try {
        if (i % 3 === 2) yield* madvise(mm, addr, PAGE_SIZE, MADV_DONTNEED);
        else yield* cpuWriteU32(mm, addr, 1000 + i);
      } catch (e) {
        if (!isErrno(e)) throw e;
        break; // SIGBUS: the reaper took the page.
      }
    }
    // The victim is slow to exit (the case the reaper exists for): its GPU work goes on meanwhile.
    yield* sleep(p.linger);
    // The GPU context goes first: in do_exit's order (exit_mm, then exit_files) nouveau's GPU
    // keeps the entries of pages exit_mmap frees until the client closes, since its classic
    // notifier has no ->release; that is another question than this scenario's.
    yield* svmm.fini();
    yield* mmput(mm);
    // exit_files() after exit_mm(): the HMM test device's release removes its subscription,
    // the VM's (kvm_destroy_vm) unregisters its notifier.
    if (mirror !== null) yield* mirror.close();
    // kvm_destroy_vm() runs once the last vCPU is gone.
    if (vcpu !== null) yield* join(vcpu);
    if (kvm !== null) yield* kvm.unregister();
  });

  let vcpu: Task | null = null;
  if (kvm !== null) {
    // The VM's vCPU touches guest memory, the process's pages, while the process lives.
    vcpu = k.spawn('vcpu', function* () {
      yield* ready.wait();
      for (let i = 0; i < p.touches; i++) {
        yield* delay(GPU_NS);
        if (mm.users <= 0) return;
        yield* kvm.touch(pageAddr(k.prng.below(p.vmas * p.pages)), i % 2 === 1);
      }
    });
  }

  k.spawn('gpu', function* () {
    yield* ready.wait();
    for (let i = 0; i < p.touches; i++) {
      yield* delay(GPU_NS);
      const page = k.prng.below(p.vmas * p.pages);
      yield* svmm!.access(pageAddr(page), i % 2 === 1);
    }
  });

  // The OOM killer's hold on its victim's mm_struct (mark_oom_victim()'s mmgrab), taken while
  // the process lives; the kill itself comes later, if the process has not exited by then.
  mmgrab(mm);
  k.spawn('oom-reaper', function* () {
    yield* ready.wait();
    yield* sleep(p.kill);
    killed = true;
    for (let attempt = 0; attempt < p.reaps && mm.users > 0; attempt++) {
      if (attempt > 0) yield* sleep(REAP_RETRY_NS);
      const r = yield* oomReap(mm);
      if (!r.contended && r.skipped === 0) break;
    }
    mmdrop(mm);
  });
}
