/**
 * The house's layers (DESIGN.md): a folder of src/ never imports a folder above it. Reads every
 * source file's relative imports (type-only and dynamic ones too) and fails naming the file, the
 * import and both layers. A new folder must be given its layer here.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Lower numbers are lower layers; a folder may import only folders with a smaller number. */
const LAYER: Record<string, number> = {
  util: 0,
  tensor: 1,
  native: 1,
  nn: 2,
  data: 3,
  comm: 4,
  generate: 4,
  config: 4,
  parallel: 5,
  metrics: 5,
  train: 6,
  rl: 7,
  dashboard: 7,
  validate: 7,
  eval: 7,
  balance: 7,
  cluster: 7,
  launch: 8,
  serve: 8,
  cli: 9,
  '(root)': 10,
};

/** Imports that still go up, each with its reason: the list may only shrink (it is empty now). */
const KNOWN_BENDS = new Set<string>([]);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

const folderOf = (rel: string): string => (rel.includes('/') ? rel.split('/')[0] : '(root)');

/** Every relative import of src/ (type-only and dynamic ones too): [importing file, imported file], relative to src/. */
function imports(): [from: string, to: string][] {
  const out: [string, string][] = [];
  for (const file of sources(SRC)) {
    const from = relative(SRC, file).split('\\').join('/');
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)) {
      out.push([from, normalize(join(dirname(from), m[1])).split('\\').join('/').replace(/\.js$/, '.ts')]);
    }
  }
  return out;
}

/**
 * Rooms inside a floor: files matching `from` import nothing under `forbidden` but the `through`
 * files. Kept empty of exceptions like the floors.
 */
const SUB_ROOMS: { from: RegExp; forbidden: string; through: string[]; why: string }[] = [
  {
    from: /^tensor\/dispatch[^/]*\.ts$/, forbidden: 'tensor/backends/', through: ['tensor/backends/registration.ts'],
    why: 'dispatch picks among registered backends; it reaches concrete ones only through the registration path',
  },
  { from: /^comm\//, forbidden: 'tensor/', through: [], why: 'comm moves bytes and knows nothing of tensors (storages reach it through parallel/ and train/)' },
  ...['train/loop/', 'train/strategies/', 'train/run/'].map((forbidden) => ({
    from: /^train\/boundary\//, forbidden, through: [],
    why: 'the host/device boundary is the floor the loop, the strategies and the run stand on',
  })),
  ...['train/loop/', 'train/strategies/'].map((forbidden) => ({
    from: /^train\/engine\//, forbidden, through: [],
    why: 'engine set-up (device, precision, threads) is chosen before any loop or strategy exists',
  })),
];

test('no folder of src/ imports a folder above it (DESIGN.md layers)', () => {
  const violations: string[] = [];
  const bendsSeen = new Set<string>();
  for (const [from, to] of imports()) {
    const [a, b] = [folderOf(from), folderOf(to)];
    if (a === b) continue;
    assert.ok(a in LAYER && b in LAYER, `${from} imports ${to}: give folder "${a in LAYER ? b : a}" a layer in test/layering.test.ts`);
    if (LAYER[b] < LAYER[a]) continue;
    const edge = `${from} -> ${to}`;
    if (KNOWN_BENDS.has(edge)) bendsSeen.add(edge);
    else violations.push(`${edge} (${a}, layer ${LAYER[a]}, imports ${b}, layer ${LAYER[b]})`);
  }
  assert.deepEqual(violations, [], `lower layers import higher ones:\n${violations.join('\n')}`);
  const gone = [...KNOWN_BENDS].filter((e) => !bendsSeen.has(e));
  assert.deepEqual(gone, [], 'straightened bends must leave KNOWN_BENDS');
});

test('sub-rooms: tensor/dispatch reaches backends only through the registration path; comm imports nothing of tensor/; train/boundary and train/engine import nothing of the loop or the strategies', () => {
  const violations = imports().flatMap(([from, to]) => SUB_ROOMS
    .filter((r) => r.from.test(from) && to.startsWith(r.forbidden) && !r.through.includes(to))
    .map((r) => `${from} -> ${to} (${r.why})`));
  assert.deepEqual(violations, [], `sub-room rules broken:\n${violations.join('\n')}`);
});

test('the sub-room rules see the imports they guard (a rule over no file would pass for nothing)', () => {
  const edges = imports();
  for (const r of SUB_ROOMS) assert.ok(edges.some(([from]) => r.from.test(from)), `no file of src/ matches ${r.from}`);
  assert.ok(edges.some(([from, to]) => from === 'tensor/dispatch.ts' && to === 'tensor/backends/registration.ts'), 'dispatch registers through the registration path');
});

test('the metrics sinks take their record types from metrics/records.ts, not from the training loop', () => {
  for (const file of sources(join(SRC, 'metrics'))) {
    assert.doesNotMatch(readFileSync(file, 'utf8'), /from '\.\.\/train\/loop\//, relative(SRC, file));
  }
});
