// Every name src/index.ts exports has a TSDoc comment where it is declared: the API reference
// of a library user is the doc comments, so an undocumented export is a hole in it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as api from '../../src/index.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DECL =
  /^export\s+(?:declare\s+)?(?:abstract\s+)?(?:class|function\*?|interface|type|const|let|enum)\s*\*?\s*([A-Za-z_$][\w$]*)/;

interface Decl {
  readonly file: string;
  readonly line: number;
  readonly documented: boolean;
}

/** The names a module exports, with where each is declared (following re-exports). */
function exportsOf(file: string, seen = new Map<string, Map<string, Decl>>()): Map<string, Decl> {
  const cached = seen.get(file);
  if (cached !== undefined) return cached;
  const out = new Map<string, Decl>();
  seen.set(file, out);
  const src = readFileSync(file, 'utf8');
  const lines = src.split('\n');
  lines.forEach((text, i) => {
    const m = DECL.exec(text);
    if (m === null) return;
    // The doc comment ends on the closest non-blank line above, and opens with `/**`.
    let j = i - 1;
    while (j >= 0 && lines[j]!.trim() === '') j--;
    let k = j;
    while (k >= 0 && !lines[k]!.includes('/*')) k--;
    const documented =
      j >= 0 && lines[j]!.trim().endsWith('*/') && k >= 0 && lines[k]!.includes('/**');
    out.set(m[1]!, { file, line: i + 1, documented });
  });
  for (const m of src.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}\s+from\s+'([^']+)'/g)) {
    const from = exportsOf(resolve(dirname(file), m[2]!), seen);
    for (const part of m[1]!.split(',')) {
      const [name, alias] = part
        .trim()
        .replace(/^type\s+/, '')
        .split(/\s+as\s+/);
      if (!name) continue;
      const d = from.get(name);
      out.set(
        alias ?? name,
        d ?? { file: resolve(dirname(file), m[2]!), line: 0, documented: false },
      );
    }
  }
  for (const m of src.matchAll(/export\s+\*\s+from\s+'([^']+)'/g))
    for (const [name, d] of exportsOf(resolve(dirname(file), m[1]!), seen))
      if (!out.has(name)) out.set(name, d);
  return out;
}

test('every export of src/index.ts has a TSDoc comment', () => {
  const all = exportsOf(resolve(root, 'src/index.ts'));
  // The scan sees every value the module really exports (types have no runtime trace).
  for (const name of Object.keys(api))
    assert.ok(all.has(name), `${name} was not found by the scan`);
  const missing = [...all]
    .filter(([, d]) => !d.documented)
    .map(([name, d]) => `${relative(root, d.file)}:${d.line} ${name}`);
  assert.deepEqual(missing, []);
});
