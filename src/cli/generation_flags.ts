/**
 * What `generate` and `chat` share: loading the model --model names on the --device asked for, with
 * --threads, and the sampling options from their flags.
 */
import { ConfigError } from '../util/errors.js';
import type { OptionValues } from '../config/options/index.js';
import type { MODEL_SOURCE_OPTIONS, SAMPLING_OPTIONS } from '../config/options/generation.js';
import { type Generator, loadGenerator } from '../generate/load_generator.js';
import type { ReplyOptions } from '../generate/reply.js';
import { describeInferenceMemory, gb } from '../generate/inference_memory.js';
import { backend } from '../tensor/dispatch.js';
import { resolveDevice } from '../train/engine/device.js';

export type ModelSourceFlags = OptionValues<typeof MODEL_SOURCE_OPTIONS>;
export type SamplingFlags = OptionValues<typeof SAMPLING_OPTIONS>;

/**
 * The model, on its device; `release` closes a GPU it opened (Dawn keeps a process alive while open).
 * `positions`: the most a sequence reaches, for the memory estimate (generate knows it from its prompt).
 */
export async function loadFromFlags(command: string, f: ModelSourceFlags, positions?: number): Promise<{ generator: Generator; release(): void }> {
  if (f.model === undefined) throw new ConfigError('command line', '--model', `${command} needs --model SRC (a Hugging Face folder, a model file, or a run's folder)`);
  if (f.threads !== undefined) backend().setThreads(f.threads);
  const device = await resolveDevice(f.device ?? 'cpu');
  // The note is worded for training (train/engine/device.ts).
  if (device.note) process.stderr.write(`smolcluster: ${device.note.replace('training on', 'running on')}\n`);
  try {
    const generator = await loadGenerator(f.model, { tokenizer: f.tokenizer, adapter: f.adapter, quantize: f.quantize, device: device.device === 'cpu' ? 'cpu' : 'gpu', precision: f.precision, positions });
    return { generator, release: () => device.release() };
  } catch (e) {
    device.release();
    throw e;
  }
}

/** The flags' sampling options, as streamReply takes them. */
export function samplingFrom(f: SamplingFlags): ReplyOptions {
  return {
    maxNewTokens: f.maxNewTokens, temperature: f.temperature, topK: f.topK, topP: f.topP, minP: f.minP,
    repetitionPenalty: f.repetitionPenalty, seed: f.seed, stopStrings: f.stop,
  };
}

/** One line naming what was loaded (and a second with the memory estimated for it). */
export function loadedLine(g: Pick<Generator, 'spec' | 'weights' | 'base' | 'tokenizer' | 'quantized' | 'memory'>): string {
  const s = g.spec;
  const shape = `${s.layers} layers × ${s.width}, vocab ${s.vocabSize}, ${s.context} positions`;
  const q = g.quantized;
  const quantized = q ? `; weights ${q.scheme}, ${megabytes(q.bytesAfter)} (${megabytes(q.bytesBefore)} in float32)` : '';
  const memory = g.memory ? `\nsmolcluster: memory ${describeInferenceMemory(g.memory.need)} of ${gb(g.memory.available)} available` : '';
  return `smolcluster: ${weightsRead(g)} (${s.type === 'llama' ? s.modelType : 'gpt2'}, ${shape}); tokenizer ${g.tokenizer.name}${quantized}${memory}`;
}

/** The weights a generator read: the model, or LoRA adapters on their base. */
export function weightsRead(g: Pick<Generator, 'weights' | 'base'>): string {
  return g.base === undefined ? g.weights : `${g.weights} on ${g.base}`;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(bytes < 1e7 ? 2 : 0)} MB`;
}
