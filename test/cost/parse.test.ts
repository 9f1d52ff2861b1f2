// Cost overrides as users write them: durations with their units, quantile lists, NAME=VALUE and
// NAME/page=VALUE assignments, and JSON files of them; every refusal is EINVAL and says what
// was wrong (and, for a file, which file).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CostModel, type CostOverrides } from '../../src/cost/model.ts';
import { addCostAssignment, parseCostFile, parseDuration } from '../../src/cost/parse.ts';
import { COST_NAMES, COSTS } from '../../src/cost/table.ts';
import { Errno } from '../../src/lib/errors.ts';
import { einval } from './einval.ts';

test('durations take ns, us, µs, ms and s; a bare number is ns', () => {
  const cases: [string, number][] = [
    ['5000ns', 5_000],
    ['5000', 5_000],
    ['0', 0],
    ['128us', 128_000],
    ['128µs', 128_000],
    ['0.5us', 500],
    ['655.36ms', 655_360_000],
    ['2s', 2_000_000_000],
    ['1.5s', 1_500_000_000],
    [' 7 us ', 7_000],
    ['1e3', 1_000],
    ['2e3us', 2_000_000],
  ];
  for (const [text, ns] of cases) assert.equal(parseDuration(text, 'x'), ns, text);
});

test('a bad duration is EINVAL quoting it and the context it was given', () => {
  for (const text of ['-1', '1 parsec', '', 'abc', '1us2', 'us', '1 u s', '1,5ms', '1ks'])
    einval(
      () => parseDuration(text, 'cost cpu.fault'),
      'cost cpu.fault',
      JSON.stringify(text),
      'is not a duration',
    );
});

test('NAME=VALUE sets the base; NAME/page=VALUE the per-page part', () => {
  assert.deepEqual(addCostAssignment({}, 'mlx5.pf.resume=1ms'), {
    'mlx5.pf.resume': { base: 1_000_000 },
  });
  assert.deepEqual(addCostAssignment({}, 'mlx5.umr/page=10ns'), { 'mlx5.umr': { perUnit: 10 } });
  assert.deepEqual(addCostAssignment({}, 'wire.byte/byte=1'), { 'wire.byte': { perUnit: 1 } });
  // Spaces around the name and the value are allowed.
  assert.deepEqual(addCostAssignment({}, ' cpu.fault = 2us '), { 'cpu.fault': { base: 2_000 } });
  // Assignments accumulate: base and per-page of one cost, and several costs; later wins.
  let o = addCostAssignment({}, 'mlx5.umr=1us');
  o = addCostAssignment(o, 'mlx5.umr/page=3ns');
  o = addCostAssignment(o, 'cpu.fault=1us');
  o = addCostAssignment(o, 'cpu.fault=9us');
  assert.deepEqual(o, {
    'mlx5.umr': { base: 1_000, perUnit: 3 },
    'cpu.fault': { base: 9_000 },
  });
  // And the model uses them.
  const m = new CostModel(1, o);
  assert.equal(m.draw('mlx5.umr', 11), 1_030);
  assert.equal(m.draw('cpu.fault'), 9_000);
});

test('an assignment does not change the overrides it is given', () => {
  const first = addCostAssignment({}, 'cpu.fault=1us');
  const snapshot = JSON.stringify(first);
  addCostAssignment(first, 'cpu.fault=2us');
  addCostAssignment(first, 'swap.in=2us');
  assert.equal(JSON.stringify(first), snapshot);
});

test('a per-unit assignment needs the unit the cost grows by', () => {
  einval(() => addCostAssignment({}, 'wire.byte/page=1ns'), 'wire.byte', 'per byte', '"page"');
  einval(() => addCostAssignment({}, 'mlx5.umr/byte=1ns'), 'mlx5.umr', 'per page', '"byte"');
  einval(() => addCostAssignment({}, 'mlx5.umr/pages=1ns'), 'mlx5.umr', '"pages"');
  einval(
    () => addCostAssignment({}, 'cpu.fault/page=1ns'),
    'cpu.fault',
    'does not grow',
    'cpu.fault=VALUE',
  );
  einval(() => addCostAssignment({}, 'mlx5.umr/page=-3ns'), 'cost mlx5.umr/page', '"-3ns"');
});

test('an assignment without = or of an unknown cost is EINVAL saying so', () => {
  einval(() => addCostAssignment({}, 'cpu.fault'), 'NAME=VALUE', '"cpu.fault"');
  einval(() => addCostAssignment({}, 'nope=1us'), 'unknown cost "nope"', 'mlx5.pf.trigger');
  einval(() => addCostAssignment({}, '=1us'), 'unknown cost ""');
  einval(() => addCostAssignment({}, 'cpu.fault=fast'), 'cost cpu.fault', '"fast"');
  einval(() => addCostAssignment({}, 'cpu.fault='), 'cost cpu.fault', 'is not a duration');
});

test('quantiles: all five, as key:duration, in any order', () => {
  const o = addCostAssignment(
    {},
    'mlx5.pf.trigger=min:110us,p50:124us,p95:159us,p99:170us,max:373us',
  );
  assert.deepEqual(o['mlx5.pf.trigger']?.base, COSTS['mlx5.pf.trigger'].base);
  const shuffled = addCostAssignment({}, 'cpu.fault=max:5us,p99:4us,min:1us,p95:3us,p50:2000');
  assert.deepEqual(shuffled['cpu.fault']?.base, {
    min: 1_000,
    p50: 2_000,
    p95: 3_000,
    p99: 4_000,
    max: 5_000,
  });
});

test('quantiles: a missing one, an unknown key, a bad value or a decrease is EINVAL', () => {
  einval(
    () => addCostAssignment({}, 'mlx5.pf.trigger=min:1us,p50:2us'),
    'cost mlx5.pf.trigger',
    'need p95, p99, max',
  );
  einval(
    () => addCostAssignment({}, 'mlx5.pf.trigger=min:1us,p50:2us,p90:3us,p99:4us,max:5us'),
    'cost mlx5.pf.trigger',
    '"p90:3us"',
    'is not a quantile',
  );
  einval(
    () => addCostAssignment({}, 'mlx5.pf.trigger=min:1us,p50,p95:3us,p99:4us,max:5us'),
    '"p50"',
    'is not a quantile',
  );
  einval(
    () => addCostAssignment({}, 'mlx5.pf.trigger=min:1us,p50:2:3us,p95:3us,p99:4us,max:5us'),
    '"p50:2:3us"',
  );
  einval(
    () => addCostAssignment({}, 'mlx5.pf.trigger=min:1us,p50:soon,p95:3us,p99:4us,max:5us'),
    'cost mlx5.pf.trigger p50',
    '"soon"',
  );
  einval(
    () => addCostAssignment({}, 'mlx5.pf.trigger=min:9us,p50:2us,p95:3us,p99:4us,max:5us'),
    'cost mlx5.pf.trigger',
    'p50',
    'min ≤ p50',
  );
});

test('a cost file: an object of assignments, strings or numbers of ns', () => {
  const o = parseCostFile(
    JSON.stringify({
      'mlx5.pf.resume': '1ms',
      'cpu.fault': 1234,
      'mlx5.umr/page': '10ns',
      'mlx5.pf.trigger': 'min:1us,p50:2us,p95:3us,p99:4us,max:5us',
    }),
    'costs.json',
  );
  assert.deepEqual(o, {
    'mlx5.pf.resume': { base: 1_000_000 },
    'cpu.fault': { base: 1_234 },
    'mlx5.umr': { perUnit: 10 },
    'mlx5.pf.trigger': { base: { min: 1_000, p50: 2_000, p95: 3_000, p99: 4_000, max: 5_000 } },
  });
  assert.deepEqual(parseCostFile('{}', 'empty.json'), {});
  assert.deepEqual(parseCostFile('{"cpu.fault": 0.5}', 'f.json'), { 'cpu.fault': { base: 0.5 } });
});

test('a bad cost file is EINVAL naming the file and what was wrong', () => {
  const file = '/tmp/my-costs.json';
  einval(() => parseCostFile('{"cpu.fault": "1us",}', file), file, 'not JSON');
  einval(() => parseCostFile('', file), file, 'not JSON');
  for (const text of ['[]', '["cpu.fault=1us"]', 'null', '"cpu.fault=1us"', '42', 'true'])
    einval(() => parseCostFile(text, file), file, 'expected an object of cost assignments');
  for (const value of ['true', 'null', '["1us"]', '{"base": "1us"}'])
    einval(
      () => parseCostFile(`{"cpu.fault": ${value}}`, file),
      file,
      '"cpu.fault"',
      'must be a duration string or a number of ns',
    );
  einval(() => parseCostFile('{"nope": "1us"}', file), file, 'unknown cost "nope"');
  einval(() => parseCostFile('{"cpu.fault": -1}', file), file, 'cost cpu.fault', '"-1"');
  einval(() => parseCostFile('{"cpu.fault": "1 parsec"}', file), file, '"1 parsec"');
  einval(() => parseCostFile('{"cpu.fault/page": "1ns"}', file), file, 'does not grow');
  einval(
    () => parseCostFile('{"mlx5.pf.trigger": "min:1us"}', file),
    file,
    'cost mlx5.pf.trigger',
    'need p50, p95, p99, max',
  );
  // The file's name replaces the errno prefix of the inner error: "EINVAL: file: ...", once.
  assert.throws(
    () => parseCostFile('{"nope": "1us"}', file),
    (e: Error) => e.message.startsWith(`EINVAL: ${file}: unknown cost`),
  );
});

test('any assignment or cost file either parses into a table the model accepts or is an EINVAL (fast-check, seed 15, 2,000 runs each)', () => {
  const names = fc.constantFrom(...COST_NAMES, 'nope', '', 'cpu.fault/page', 'wire.byte/byte');
  const values = fc.oneof(
    fc.string(),
    fc.constantFrom(
      '128us',
      '1e3ns',
      '0.5ms',
      '-1',
      'NaN',
      'Infinity',
      '1e999',
      'min:1,p50:2,p95:3,p99:4,max:5',
    ),
    fc.double().map(String),
  );
  const accepts = (o: CostOverrides) => {
    new CostModel(1, o).draw('cpu.fault');
  };
  const einvalOnly = (f: () => void) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof Errno && e.code === 'EINVAL', String(e));
    }
  };
  fc.assert(
    fc.property(names, values, fc.string(), (name, value, junk) => {
      einvalOnly(() => accepts(addCostAssignment({}, `${name}=${value}`)));
      einvalOnly(() => accepts(addCostAssignment({}, junk)));
    }),
    { seed: 15, numRuns: 2000 },
  );
  fc.assert(
    fc.property(
      fc.oneof(
        fc.json(),
        fc.dictionary(names, values).map((d) => JSON.stringify(d)),
      ),
      (text) => {
        einvalOnly(() => accepts(parseCostFile(text, 'costs.json')));
      },
    ),
    { seed: 15, numRuns: 2000 },
  );
});
