/**
 * The spellings people write for our models and datasets — the heterogeneous-cluster guide's
 * (`simple_cnn`, `resnet50`, `bert`, `gpt2`, `synthetic_image`, `cifar10`), SmolCluster's
 * (`SimpleNN`, `MNIST`), and the same names with other case, `-` or `_` (`ResNet-50`, `GPT2`,
 * `CIFAR-10`, `synthetic-image`) — mapped to one canonical name each (docs/CONFIG.md's table).
 * Anything else is refused with the accepted names.
 */
import { MODEL_NAMES } from '../nn/models/names.js';

/** Canonical --dataset names (train/run/config.ts DATASETS; repeated here, below train). */
export const DATASET_NAMES = ['mnist', 'synthetic-regression', 'synthetic_image', 'synthetic_text', 'cifar10', 'text'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** Names that are not a respelling of a canonical one. */
const MODEL_ALIASES: Record<string, string> = { simplenn: 'mlp' };

/** Case, `-`, `_`, `.` and spaces do not tell two names apart. */
function key(name: string): string {
  return name.toLowerCase().replace(/[-_.\s]/g, '');
}

function lookup(names: readonly string[], aliases: Record<string, string>): (value: string) => string | null {
  const byKey = new Map<string, string>(names.map((n) => [key(n), n]));
  for (const [alias, canonical] of Object.entries(aliases)) byKey.set(key(alias), canonical);
  return (value) => byKey.get(key(value)) ?? null;
}

/** The canonical model name for `value`, or null. */
export const canonicalModel = lookup(MODEL_NAMES, MODEL_ALIASES);
/** The canonical dataset name for `value`, or null. */
export const canonicalDataset = lookup(DATASET_NAMES, {});

/** What an unknown name's error says: the accepted names (other spellings of them work too). */
export function acceptedModels(): string {
  return `${MODEL_NAMES.join(', ')} (or SimpleNN for mlp; case, - and _ do not matter)`;
}

export function acceptedDatasets(): string {
  return `${DATASET_NAMES.join(', ')} (case, - and _ do not matter: MNIST, CIFAR-10, synthetic-image)`;
}

/**
 * The candidate a mistyped name most likely meant ("did you mean"), or null when none is close:
 * same key up to case, `-` and `_`, or within a few edits (a swap of two letters counts as one).
 */
export function closest(value: string, candidates: readonly string[]): string | null {
  const v = key(value);
  const limit = v.length <= 4 ? 1 : v.length <= 8 ? 2 : 3;
  let best: string | null = null;
  let bestDistance = limit + 1;
  for (const c of candidates) {
    const d = editDistance(v, key(c));
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

/** Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** `" (did you mean X?)"` for the closest candidate, or nothing when none is close. */
export function didYouMean(value: string, candidates: readonly string[]): string {
  const guess = closest(value, candidates);
  return guess ? ` (did you mean ${guess}?)` : '';
}
