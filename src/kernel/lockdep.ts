import type { HeldLock, LockIdentity, Task } from './task.ts';

/** How one "acquired while holding" edge was first seen, for the report. */
interface EdgeOrigin {
  readonly task: string;
  readonly from: string;
  readonly to: string;
}

/** The outcome of a lock-order check: null when fine, else the problem. */
export interface LockOrderProblem {
  readonly rule: 'lock-order' | 'recursive-lock';
  readonly detail: string;
}

/**
 * A lockdep-like dependency graph between lock classes (kernel/locking/lockdep.c): an edge
 * A → B means "B was acquired while A was held". Acquiring B while holding A when B → … → A
 * already exists is an inversion, reported at once even if this schedule does not deadlock.
 */
export class Lockdep {
  /** Off models a kernel without CONFIG_PROVE_LOCKING: inversions then show only as deadlocks. */
  enabled = true;
  private readonly edges = new Map<string, Map<string, EdgeOrigin>>();

  /**
   * lock_acquire(): checks taking `lock` in `mode` against the task's held locks and records
   * the new edges. Trylocks cannot deadlock and add no edges, as in lockdep.
   */
  check(
    task: Task,
    lock: LockIdentity,
    mode: 'read' | 'write',
    trylock: boolean,
  ): LockOrderProblem | null {
    if (task.lockdepOff > 0) return null;
    for (const h of task.held) {
      if (!this.enabled && h.lock !== lock) continue;
      if (h.lock === lock) {
        // Nested read of an rwsem is allowed here so that the writer-preference deadlock it
        // causes reproduces as a real deadlock.
        if (mode === 'read' && h.mode === 'read') continue;
        return {
          rule: 'recursive-lock',
          detail: `${task.name} acquires ${lock.name} which it already holds`,
        };
      }
      if (trylock || h.lock.lockClass === lock.lockClass) continue;
      const problem = this.addEdge(task, h, lock);
      if (problem !== null) return problem;
    }
    return null;
  }

  private addEdge(task: Task, held: HeldLock, lock: LockIdentity): LockOrderProblem | null {
    const from = held.lock.lockClass;
    const to = lock.lockClass;
    let out = this.edges.get(from);
    if (out?.has(to)) return null;
    const path = this.path(to, from);
    if (path !== null) {
      const seen = path.map((e) => `${e.to} after ${e.from} (in ${e.task})`).join(', ');
      return {
        rule: 'lock-order',
        detail: `possible circular locking: ${task.name} acquires ${lock.name} (class ${to}) while holding ${held.lock.name} (class ${from}), but earlier ${seen}`,
      };
    }
    if (out === undefined) {
      out = new Map();
      this.edges.set(from, out);
    }
    out.set(to, { task: task.name, from: held.lock.name, to: lock.name });
    return null;
  }

  /** A chain of recorded edges from class `a` to class `b`, or null. */
  private path(a: string, b: string): EdgeOrigin[] | null {
    const prevOf = new Map<string, [string, EdgeOrigin] | null>([[a, null]]);
    const queue = [a];
    for (let i = 0; i < queue.length; i++) {
      const cls = queue[i]!;
      if (cls === b) {
        const chain: EdgeOrigin[] = [];
        for (let p = prevOf.get(cls); p; p = prevOf.get(p[0])) chain.unshift(p[1]);
        return chain;
      }
      for (const [next, origin] of this.edges.get(cls) ?? []) {
        if (prevOf.has(next)) continue;
        prevOf.set(next, [cls, origin]);
        queue.push(next);
      }
    }
    return null;
  }
}
