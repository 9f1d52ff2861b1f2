import { KernelBug } from '../../kernel/bug.ts';
import { kernel } from '../../kernel/kernel.ts';
import type { TraceEvent } from '../../kernel/trace.ts';

/**
 * Object lifetimes (spec rdma-odp.md §6, 5): a tracked driver object is freed once, with no
 * reference outstanding (its destruction waited for every fault, prefetch and lookup that
 * held it), and nothing takes or drops a reference after the free, nor finds it by a lookup
 * after the object was revoked. Once every process has exited, every reference taken has been dropped.
 */
export class LifetimeOracle {
  checks = 0;
  private readonly refs = new Map<string, number>();
  private readonly freed = new Set<string>();
  private readonly revoked = new Set<string>();

  readonly onEvent = (e: TraceEvent): void => {
    if (e.type === 'obj-get' || e.type === 'obj-put') {
      this.checks++;
      if (this.freed.has(e.obj))
        this.fail(
          'lifetime',
          `${e.obj}: reference ${e.type === 'obj-get' ? 'taken' : 'dropped'} after it was freed`,
        );
      if (e.type === 'obj-get' && e.lookup && this.revoked.has(e.obj))
        this.fail('lifetime', `${e.obj}: a lookup found it after it was revoked`);
      const n = (this.refs.get(e.obj) ?? 0) + (e.type === 'obj-get' ? 1 : -1);
      if (n < 0) this.fail('lifetime', `${e.obj}: more references dropped than taken`);
      this.refs.set(e.obj, n);
    } else if (e.type === 'obj-revoke') {
      this.revoked.add(e.obj);
    } else if (e.type === 'obj-free') {
      this.checks++;
      if (this.freed.has(e.obj)) this.fail('lifetime', `${e.obj} is freed twice`);
      const n = this.refs.get(e.obj) ?? 0;
      if (n > 0) this.fail('lifetime', `${e.obj} is freed while ${n} reference(s) are outstanding`);
      this.freed.add(e.obj);
      this.refs.delete(e.obj);
    }
  };

  /** Once the world's processes are gone: no reference is still held. */
  checkQuiescent(): void {
    for (const [obj, n] of this.refs)
      if (n > 0) this.fail('lifetime', `${obj}: ${n} reference(s) never dropped`);
  }

  private fail(rule: string, detail: string): never {
    const t = kernel().current;
    throw new KernelBug(rule, detail, { task: t?.name ?? null, held: t?.heldNames() ?? [] });
  }
}
