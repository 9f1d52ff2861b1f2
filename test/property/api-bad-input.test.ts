// The public API under bad input, at random: fast-check generates sequences of calls (mmap,
// munmap, mprotect, mremap, madvise, fork, exit, CPU reads and writes, GUP and unpin, classic
// notifier register/unregister/get/put, interval notifier insert/remove, hmm_range_fault, HMM
// test device open/ioctl/close, ftruncate, SVA bind/unbind/DMA) whose arguments mix good values
// with bad ones: unaligned, zero, negative, NaN, fractional or huge lengths and addresses, ranges
// past TASK_SIZE or overflowing 2^64, unknown prot, flag and advice bits, values that are not
// numbers, and calls on an exited mm, a removed subscription, a closed device or an unbound bond.
//
// The property (api-runner.ts): every call returns or throws an Errno whose message names the
// call or what was wrong; never another exception, a KernelBug from an oracle, or a hang (the
// kernel's step limit); an argument outside the call's contract is refused; and a call that
// fails leaves the VMAs, the CPU page tables and every open device table as they were (the page
// tables may keep what Linux keeps: pages faulted before the hole an access or GUP fails at,
// madvise's work before its ENOMEM, what direct reclaim took). At the end everything is given
// back and the leak check runs.
//
// The runs stop at the first failure without shrinking (endOnFailure). To turn a failure into a
// regression test, rerun with ODPSIM_SHRINK=1: fast-check then prints the shrunk sequence.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type Command, commands } from './api-commands.ts';
import { runCommands } from './api-runner.ts';

const shrink = process.env.ODPSIM_SHRINK === '1';

/** Runs the property and returns, per call, the ways it ended (ok, skipped, errno codes). */
function check(seed: number, numRuns: number, frames: number): Map<Command['op'], Set<string>> {
  const seen = new Map<Command['op'], Set<string>>();
  const out = fc.check(
    fc.property(commands, (cmds) => {
      const r = runCommands(cmds, { frames });
      for (const o of r.outcomes) {
        const ends = seen.get(o.op) ?? new Set<string>();
        seen.set(o.op, ends.add(o.result));
      }
      if (r.problem !== null) throw new Error(r.problem);
    }),
    { seed, numRuns, endOnFailure: !shrink },
  );
  if (out.failed) {
    const e = out.errorInstance;
    assert.fail(
      `${e instanceof Error ? e.message : String(e)}\n` +
        `after ${out.numRuns} runs, { seed: ${seed}, path: "${out.counterexamplePath}" }, ` +
        `shrunk ${out.numShrinks} times${shrink ? '' : ' (ODPSIM_SHRINK=1 shrinks)'}:\n` +
        fc.stringify(out.counterexample),
    );
  }
  return seen;
}

/** Calls whose bad arguments the sequences reach (the rest cannot fail by design). */
const REFUSING: readonly Command['op'][] = [
  'mmap',
  'munmap',
  'mprotect',
  'mremap',
  'madvise',
  'fork',
  'read',
  'write',
  'gup',
  'register',
  'get',
  'insert',
  'remove',
  'hmm',
  'device',
  'open',
  'ioctl',
  'close',
  'truncate',
  'bind',
  'unbind',
  'dma',
  'iopf',
];

test('any call of the public API, bad arguments mixed in, succeeds or is an Errno saying what was wrong, and a failed call changes nothing (fast-check, seed 7, 1,500 runs)', () => {
  const seen = check(7, 1500, 256);
  for (const [op, ends] of seen) assert.ok(ends.has('ok'), `${op} never succeeded`);
  for (const op of REFUSING) {
    const ends = [...(seen.get(op) ?? [])];
    assert.ok(
      ends.some((e) => e !== 'ok' && e !== 'skipped'),
      `${op} never failed: ${ends.join(', ')}`,
    );
  }
  assert.equal(seen.size, 27, `every kind of call ran: ${[...seen.keys()].join(', ')}`);
});

test('the same under memory pressure: allocations that fail or reclaim change nothing else (fast-check, seed 3, 400 runs, 40 frames)', () => {
  const seen = check(3, 400, 40);
  assert.ok(seen.get('mmap')?.has('ENOMEM'), 'some mmap of the device ran out of memory');
});
