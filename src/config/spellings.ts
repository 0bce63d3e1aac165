/**
 * The spellings people write for our models and datasets — the heterogeneous-cluster guide's
 * (`simple_cnn`, `resnet50`, `bert`, `gpt2`, `synthetic_image`, `cifar10`), SmolCluster's
 * (`SimpleNN`, `MNIST`), and the same names with other case, `-` or `_` (`ResNet-50`, `GPT2`,
 * `CIFAR-10`, `synthetic-image`) — mapped to one canonical name each (docs/CONFIG.md's table).
 * Anything else is refused with the accepted names.
 */
import { MODEL_NAMES } from '../nn/models/names.js';

/** Canonical --dataset names (train/config.ts DATASETS; repeated here, below train). */
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
