import { installOracles } from '../check/oracles/install.ts';
import { NouveauSvmm } from '../drivers/nouveau/svm.ts';
import { delay } from '../kernel/context.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { Completion } from '../kernel/sync/completion.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../mm/constants.ts';
import { cpuWriteU32 } from '../mm/cpu-access.ts';
import { mmput } from '../mm/exit.ts';
import { Machine } from '../mm/machine.ts';
import { mmap } from '../mm/mmap.ts';
import { paramOf, type Scenario, type ScenarioParams } from './scenario.ts';

/** Virtual time between two GPU accesses, ns. */
const GPU_NS = 400;

const param = (p: ScenarioParams, name: string) => paramOf('nouveau-exit', p, name);

/**
 * `nouveau-exit`: a process whose GPU mirrors its memory through nouveau SVM exits in
 * do_exit()'s order: exit_mm() (the last mmput: exit_mmap() unlinks the classic notifiers, then
 * unmaps and frees the pages) before exit_files() closes the DRM client (nouveau_svmm_fini()).
 * See docs/findings/nouveau-exit-release.md.
 *
 * Tasks: `process` maps `pages` pages, writes them, creates the SVM address space, waits until
 * the GPU has touched every page, exits and then closes its client. `gpu` touches every page
 * (each faults once), then makes `touches` more accesses while the process exits (queued GPU
 * work, which nouveau_channel_idle() waits for at close). With `fix=1` the classic notifier has
 * a ->release clearing the GPU's entries (the proposed fix).
 */
export const nouveauExitScenario: Scenario = {
  name: 'nouveau-exit',
  description:
    'a nouveau SVM process exits in do_exit order: with no ->release the GPU keeps entries of the pages exit frees (fix=1 adds one)',
  finding: { rule: 'coherence', doc: 'docs/findings/nouveau-exit-release.md', clean: { fix: 1 } },
  params: [
    { name: 'pages', description: 'pages mapped and mirrored', default: 4, min: 1, max: 4096 },
    {
      name: 'touches',
      description: 'GPU reads, at PRNG-chosen pages, while the process exits',
      default: 4,
      min: 0,
      max: 100_000,
    },
    {
      name: 'fix',
      description: '1: the classic notifier has a ->release clearing the GPU (proposed fix)',
      default: 0,
      min: 0,
      max: 1,
    },
  ],
  build(k: Kernel, p: ScenarioParams): void {
    const pages = param(p, 'pages');
    const touches = param(p, 'touches');
    const fix = param(p, 'fix') === 1;
    const machine = new Machine(k, { frames: pages + 8 });
    installOracles(k, machine);
    const mm = machine.createMm();
    const ready = new Completion('ready');
    const mirrored = new Completion('mirrored');
    let base = 0;
    let svmm: NouveauSvmm | null = null;

    k.spawn('process', function* () {
      base = yield* mmap(mm, {
        len: pages * PAGE_SIZE,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS,
      });
      for (let i = 0; i < pages; i++) yield* cpuWriteU32(mm, base + i * PAGE_SIZE, i + 1);
      svmm = yield* NouveauSvmm.init(mm, { withRelease: fix });
      ready.completeAll();
      yield* mirrored.wait();
      yield* mmput(mm); // exit_mm()
      yield* svmm.fini(); // exit_files(): the DRM client's last close
    });

    k.spawn('gpu', function* () {
      yield* ready.wait();
      for (let i = 0; i < pages; i++) yield* svmm!.access(base + i * PAGE_SIZE, i % 2 === 1);
      mirrored.complete();
      for (let i = 0; i < touches; i++) {
        yield* delay(GPU_NS);
        yield* svmm!.access(base + k.prng.below(pages) * PAGE_SIZE, false);
      }
    });
  },
};
