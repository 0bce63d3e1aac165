/**
 * Every model name the CLI and the YAML configs accept (no imports: the config schema reads this).
 * `cnn` is the old name of `simple_cnn`; the guide's `resnet50`, `bert` and `gpt2` are presets.
 */
export const IMAGE_MODELS = ['resnet18', 'resnet34', 'resnet50'] as const;
export const GPT2_MODELS = ['gpt2', 'gpt2-medium', 'gpt2-mini', 'gpt2-tiny'] as const;
export const BERT_MODELS = ['bert', 'bert-base', 'bert-mini', 'bert-tiny'] as const;
/** The Llama family (llama, qwen2, qwen3, mixtral variants): published shapes and tiny ones for tests. */
export const LLAMA_MODELS = ['smollm2-135m', 'smollm2-360m', 'qwen2.5-0.5b', 'qwen3-0.6b', 'llama-3.2-1b', 'llama-tiny', 'mixtral-tiny'] as const;
export type ResNetName = (typeof IMAGE_MODELS)[number];
export type Gpt2Name = (typeof GPT2_MODELS)[number];
export type BertName = (typeof BERT_MODELS)[number];
export type LlamaName = (typeof LLAMA_MODELS)[number];

export const MODEL_NAMES = ['mlp', 'cnn', 'simple_cnn', ...IMAGE_MODELS, ...GPT2_MODELS, ...BERT_MODELS, ...LLAMA_MODELS] as const;
export type ModelType = (typeof MODEL_NAMES)[number];

/** What a model family reads: images [C, H, W], feature vectors [D] or token ids [T]. */
export type InputKind = 'images' | 'vectors' | 'tokens';

/** The inputs each model family takes (config/compatibility.ts checks them against the dataset's). */
export function inputsOf(model: ModelType): readonly InputKind[] {
  if (model === 'mlp') return ['images', 'vectors'];
  if (model === 'cnn' || model === 'simple_cnn' || (IMAGE_MODELS as readonly string[]).includes(model)) return ['images'];
  return ['tokens'];
}
