// Regression (fixed in src/mm/mmu-notifier-register.ts; found while choosing what the property generates):
// unregistering a classic notifier twice dropped the mm_count reference twice and passed, the
// damage showing later as a use-after-free at mmput(); registering a registered one linked it
// twice and passed, showing later as a lifetime bug in an invalidation. Unregistering one that
// was never registered, or putting one that is not, already WARNs at the call: the same rule
// now covers these.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MmuNotifier, mmuNotifierRegister, mmuNotifierUnregister } from '../../src/index.ts';
import { inWorld } from './regression-harness.ts';

const ops = {
  *invalidateRangeStart() {
    return 0;
  },
};

test('a second mmu_notifier_unregister() is a WARN at that call', () => {
  let after = false;
  const bug = inWorld(function* (mm) {
    const sub = new MmuNotifier(ops);
    yield* mmuNotifierRegister(sub, mm);
    yield* mmuNotifierUnregister(sub, mm);
    yield* mmuNotifierUnregister(sub, mm);
    after = true;
  });
  assert.equal(bug?.rule, 'warn', bug?.message);
  assert.match(bug!.message, /mmu_notifier_unregister/);
  assert.equal(after, false, 'the run stops at the second unregister');
});

test('mmu_notifier_register() of a registered notifier is a WARN at that call', () => {
  let after = false;
  const bug = inWorld(function* (mm) {
    const sub = new MmuNotifier(ops);
    yield* mmuNotifierRegister(sub, mm);
    yield* mmuNotifierRegister(sub, mm);
    after = true;
    yield* mmuNotifierUnregister(sub, mm);
  });
  assert.equal(bug?.rule, 'warn', bug?.message);
  assert.match(bug!.message, /mmu_notifier_register/);
  assert.equal(after, false, 'the run stops at the second register');
});
