/**
 * Workqueues (kernel/workqueue.c): queue_work() of a work item, run later in process context by
 * a worker, and flush_workqueue(). A worker task is created when work arrives and exits when the
 * queue is empty, so an idle workqueue holds no task and a world can finish.
 */
import { mightSleep } from './context.ts';
import { kernel } from './kernel.ts';
import { WaitQueue } from './sync/wait-queue.ts';
import type { Co, Task } from './task.ts';

/** struct work_struct: a function a worker runs; queued at most once until it starts. */
export class Work {
  readonly name: string;
  readonly fn: () => Co;
  /** WORK_STRUCT_PENDING: queued and not yet started. */
  pending = false;

  constructor(name: string, fn: () => Co) {
    this.name = name;
    this.fn = fn;
  }
}

/**
 * struct workqueue_struct. `maxActive` 1 is an ordered (single-threaded) workqueue: items run
 * one at a time in queue order, as create_singlethread_workqueue() gives; more allows that many
 * workers at once (an unbound workqueue).
 */
export class Workqueue {
  readonly name: string;
  readonly maxActive: number;
  private readonly queue: Work[] = [];
  private readonly workers = new Set<Task>();
  /** Items queued and items finished since creation, for flush_workqueue(). */
  private queued = 0;
  private finished = 0;
  private readonly done: WaitQueue;

  constructor(name: string, maxActive = 1) {
    this.name = name;
    this.maxActive = maxActive;
    this.done = new WaitQueue(`${name}.flush`);
  }

  /** queue_work(): false when the item is already pending. Never sleeps. */
  queueWork(work: Work): boolean {
    if (work.pending) return false;
    work.pending = true;
    this.queue.push(work);
    this.queued++;
    if (this.workers.size < this.maxActive) this.startWorker();
    return true;
  }

  /** flush_workqueue(): waits until every item queued before the call has finished. */
  *flush(): Co {
    mightSleep(`flush_workqueue(${this.name})`);
    const target = this.queued;
    yield* this.done.waitEvent(() => this.finished >= target);
  }

  /** Items queued or running. */
  get busy(): number {
    return this.queued - this.finished;
  }

  private startWorker(): void {
    const self = this;
    const k = kernel();
    const task: Task = k.spawn(`kworker/${this.name}`, function* () {
      try {
        for (let w = self.queue.shift(); w !== undefined; w = self.queue.shift()) {
          w.pending = false;
          yield* w.fn();
          self.finished++;
          self.done.wakeUpAll();
        }
      } finally {
        self.workers.delete(task);
      }
    });
    this.workers.add(task);
  }
}
