// Runs a command sequence in one simulated kernel task, with every oracle installed and a step
// limit: each call must return or throw an Errno that says what was wrong, and a call that
// fails must leave the VMAs, the CPU page tables and every open device table as they were.
import {
  type Co,
  Dmirror,
  ERRNO_CODES,
  type Errno,
  hex,
  installOracles,
  iommuSvaBindDevice,
  iommuSvaUnbindDevice,
  isErrno,
  isKernelBug,
  Kernel,
  Machine,
  MmuNotifier,
  mmput,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuNotifierGet,
  mmuNotifierPut,
  mmuNotifierRegister,
  mmuNotifierSynchronize,
  mmuNotifierUnregister,
  TASK_SIZE,
  unpinUserPages,
} from '../../src/index.ts';
import type { Call } from './api-call.ts';
import type { Command } from './api-commands.ts';
import { plan } from './api-mm-calls.ts';
import { World } from './api-world.ts';
import { changedParts, snapshotWorld } from './world-snapshot.ts';

/** How one call ended. */
export interface Outcome {
  readonly op: Command['op'];
  readonly result: 'ok' | 'skipped' | string;
}

/** The outcome of a sequence: the first problem found (null when none), and each call's end. */
export interface RunReport {
  readonly problem: string | null;
  readonly outcomes: readonly Outcome[];
  readonly steps: number;
}

/** Options of a run. */
export interface RunOptions {
  /** Steps before the run counts as hung (default 300,000). */
  readonly maxSteps?: number;
  /** Frames of the machine (default 256). */
  readonly frames?: number;
}

const CODES = new Map<number, string>(Object.entries(ERRNO_CODES).map(([k, v]) => [v, k]));

/** A short rendering of a value as a message would quote it, or null for one too common to count. */
function renderings(v: unknown): string[] {
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0 && v < 16) return [];
    const out = [String(v)];
    if (Number.isInteger(v) && v >= 0) out.push(hex(v));
    return out;
  }
  if (typeof v === 'string') return [JSON.stringify(v), v];
  if (typeof v === 'bigint') return [`${v}n`, String(v)];
  return [String(v)];
}

/** Null when the Errno's message says what was wrong, else why not. */
export function explains(e: Errno, c: Call, mmName: string | null): string | null {
  const prefix = `${e.code}: `;
  if (!e.message.startsWith(prefix))
    return `message ${JSON.stringify(e.message)} lacks "${prefix}"`;
  const text = e.message.slice(prefix.length);
  if (text.trim().length < 4) return `message ${JSON.stringify(e.message)} says nothing`;
  const words = [c.name, ...c.words, ...(mmName === null ? [] : [mmName])];
  if (words.some((w) => w !== '' && text.toLowerCase().includes(w.toLowerCase()))) return null;
  if (c.args.some((a) => renderings(a).some((r) => text.includes(r)))) return null;
  if (c.range !== null) {
    const [lo, hi] = c.range;
    for (const m of text.matchAll(/0x[0-9a-f]+/g)) {
      const at = Number.parseInt(m[0], 16);
      if (at >= lo - 4096 && at <= hi) return null;
    }
  }
  return `message ${JSON.stringify(e.message)} names neither ${c.name} nor its arguments`;
}

function show(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    typeof x === 'bigint'
      ? `${x}n`
      : typeof x === 'number' && !Number.isFinite(x)
        ? String(x)
        : x === undefined
          ? 'undefined'
          : x,
  );
}

/** Runs `cmds` in a fresh world and reports the first problem. */
export function runCommands(cmds: readonly Command[], options: RunOptions = {}): RunReport {
  const k = new Kernel({ maxSteps: options.maxSteps ?? 300_000 });
  const machine = new Machine(k, { frames: options.frames ?? 256 });
  installOracles(k, machine);
  const w = new World(k, machine);
  const outcomes: Outcome[] = [];
  let problem: string | null = null;
  let at = 'setup';

  function* one(i: number, c: Command): Co<boolean> {
    const p = plan(w, c);
    if (p === null) {
      outcomes.push({ op: c.op, result: 'skipped' });
      return true;
    }
    at = `command #${i} ${p.name}(${c.op} ${show(c)}; args ${show(p.args)})`;
    const mms = w.mms.map((s) => s.mm);
    const devices = w.mirrors.filter((m) => m.open).map((m) => m.d);
    const before = snapshotWorld(mms, devices, w.devAddrs);
    const reclaims = w.reclaims;
    const mmName = 'mm' in c ? `mm${w.mmSlot(c.mm).mm.id}` : null;
    let code: string | null = null;
    try {
      const result = yield* p.run();
      if (p.returnsErrno && result !== 0) {
        code = typeof result === 'number' ? (CODES.get(-result) ?? null) : null;
        if (code === null) {
          problem = `${at}: returned ${show(result)}, neither 0 nor a negative errno`;
          return false;
        }
      } else {
        if (p.invalid !== null) {
          problem = `${at}: succeeded (returned ${show(result)}) despite ${p.invalid}`;
          return false;
        }
        const wrong = p.check(result);
        if (wrong !== null) {
          problem = `${at}: succeeded but ${wrong}`;
          return false;
        }
        p.commit(result);
        outcomes.push({ op: c.op, result: 'ok' });
        return true;
      }
    } catch (e) {
      if (!isErrno(e)) {
        const what = isKernelBug(e)
          ? `KernelBug ${e.rule}`
          : e instanceof Error
            ? e.name
            : 'a non-error';
        problem = `${at}: threw ${what}, not an Errno: ${e instanceof Error ? e.message : String(e)}`;
        if (e instanceof Error && !isKernelBug(e)) problem += `\n${e.stack ?? ''}`;
        return false;
      }
      const vague = explains(e, p, mmName);
      if (vague !== null) {
        problem = `${at}: ${vague}`;
        return false;
      }
      code = e.code;
    }
    const after = snapshotWorld(mms, devices, w.devAddrs);
    // Work done before the failure (Linux keeps it), or direct reclaim the call's allocations ran.
    const allowed = p.partial(code) || w.reclaims > reclaims ? ['pt', 'dev'] : [];
    const changed = changedParts(before, after).filter((part) => !allowed.includes(part));
    if (changed.length > 0) {
      problem = `${at}: failed with ${code} but changed the ${changed.join(' and the ')}`;
      for (const part of changed)
        problem += `\n  before ${part}: ${before[part]}\n  after  ${part}: ${after[part]}`;
      return false;
    }
    outcomes.push({ op: c.op, result: code });
    return true;
  }

  /** Gives back everything the world still holds, so that the leak check can pass. */
  function* teardown(): Co {
    at = 'teardown';
    for (const s of w.pins) unpinUserPages(machine, s.pages, { pin: s.pin });
    for (const m of w.mirrors) if (m.open) yield* m.d.close();
    for (const s of w.intervals) if (s.inserted) yield* mmuIntervalNotifierRemove(s.sub);
    for (const s of w.classic) if (s.registered) yield* mmuNotifierUnregister(s.sub, s.mm!);
    for (const s of w.got) for (; s.refs > 0; s.refs--) yield* mmuNotifierPut(s.sub);
    for (const b of w.bonds) if (b.bound) yield* iommuSvaUnbindDevice(b);
    yield* mmuNotifierSynchronize(w.mms[0]!.mm);
    for (const s of w.mms) if (s.live) yield* mmput(s.mm);
  }

  /**
   * Something for every pool of the first mm: a mirror, an interval subscription over all of it,
   * an SVA bond, a registered and a got classic subscriber.
   */
  function* setup(): Co {
    const mm = w.mms[0]!.mm;
    w.mirrors.push({ d: yield* Dmirror.open(w.devices[0]!, mm), open: true });
    const s = w.newInterval();
    yield* mmuIntervalNotifierInsert(s.sub, mm, 0, TASK_SIZE, s.sub.ops);
    s.inserted = true;
    w.bonds.push(yield* iommuSvaBindDevice('sva0', mm));
    const sub = new MmuNotifier(w.classicOps);
    yield* mmuNotifierRegister(sub, mm);
    w.classic.push({ sub, mm, registered: true });
    w.got.push({ sub: yield* mmuNotifierGet(w.getOps, mm), refs: 1 });
  }

  k.spawn('user', function* () {
    yield* setup();
    for (const [i, c] of cmds.entries()) if (!(yield* one(i, c))) return;
    yield* teardown();
  });
  const r = k.run();
  if (problem === null && !r.ok)
    problem = `${at}: the run failed: ${r.bug?.rule}: ${r.bug?.message}`;
  return { problem, outcomes, steps: r.steps };
}
