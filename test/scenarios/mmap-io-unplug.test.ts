// The mmap-io-unplug scenario: what one run touches and checks, and the parameter
// combinations it refuses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { registeredOracles } from '../../src/check/oracles/registry.ts';
import { isErrno, Kernel, TimedStrategy } from '../../src/index.ts';
import { resolveParams } from '../../src/scenarios/index.ts';
import { mmapIoUnplugScenario } from '../../src/scenarios/mmap-io-unplug.ts';

test('a run touches every kind of mapping and checks what each is due, with every process exiting', () => {
  for (const set of [{}, { procs: 4, mremap: 0 }, { era: 420, mremap: 2 }]) {
    const k = new Kernel({ strategy: new TimedStrategy() });
    mmapIoUnplugScenario.build(k, resolveParams(mmapIoUnplugScenario, set));
    const r = k.run();
    // In the timed order the children touch their copies after the unplug: with era=420
    // (no fault handler yet) that is a SIGBUS where the dummy page is due.
    if (set.era === 420) assert.equal(r.bug?.rule, 'io-semantics');
    else assert.equal(r.bug, null, r.bug?.message);
    const semantics = registeredOracles(k).find((o) => o.name === 'io-semantics')!;
    assert.ok(semantics.checks() > 10, JSON.stringify(set));
  }
});

test('era must be one of the modelled versions, and revoke needs era 613', () => {
  assert.throws(
    () => resolveParams(mmapIoUnplugScenario, { era: 550 }),
    (e: unknown) => isErrno(e, 'EINVAL') && /era .* must be one of 420, 501/.test(String(e)),
  );
  assert.throws(
    () => resolveParams(mmapIoUnplugScenario, { revoke: 1 }),
    (e: unknown) => isErrno(e, 'EINVAL') && /revoke=1 needs era=613/.test(String(e)),
  );
  assert.equal(resolveParams(mmapIoUnplugScenario, { revoke: 1, era: 613 }).revoke, 1);
});
