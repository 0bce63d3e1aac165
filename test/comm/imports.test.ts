/**
 * The process group and its collectives reach nothing of tensor/: the sum kernel comes in the op's
 * context (ProcessGroupOptions.reducer), as Gloo passes its reducer in. Follows every relative
 * import from src/comm/process_group.ts, transitively.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => join(dirname(file), m[1]).replace(/\.js$/, '.ts'));
}

test('ProcessGroup and everything it imports stay out of tensor/', () => {
  const seen = new Set<string>();
  const queue = [join(SRC, 'comm', 'process_group.ts')];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    assert.ok(existsSync(file), `${relative(SRC, file)} is imported but missing`);
    seen.add(file);
    queue.push(...importsOf(file));
  }
  const reached = [...seen].map((f) => relative(SRC, f).split('\\').join('/'));
  assert.ok(reached.includes('comm/collectives/reduce_ops.ts') && reached.includes('comm/group_transport.ts'), 'the walk reaches the collectives');
  assert.deepEqual(reached.filter((f) => !f.startsWith('comm/') && !f.startsWith('util/')), []);
});
