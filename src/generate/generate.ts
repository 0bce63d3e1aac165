/**
 * Text generation from a causal language model (GPT-2, the Llama family): the prompt's prefill
 * fills a KV cache with one causal forward, then each new token is one forward of a single position
 * over the cache. Tokens are chosen by sampling.ts, and generation stops at max new tokens, an EOS id
 * or a stop string (found in the decoded text of the generated tokens).
 */
import { noGrad } from '../tensor/autograd.js';
import { type Precision, withComputePrecision } from '../tensor/precision.js';
import { Tensor } from '../tensor/tensor.js';
import type { AttentionCache } from '../nn/layers/attention.js';
import type { Module } from '../nn/module.js';
import { Rng } from '../util/rng.js';
import { KvCache } from './kv_cache.js';
import { type SamplingOptions, checkSampling, sampleToken } from './sampling.js';

/** A model whose forward continues a KV cache: GPT-2's and the Llama family's. */
export interface CausalLm extends Module {
  forward(ids: Tensor, cache?: AttentionCache): Tensor;
}

export interface GenerateOptions extends SamplingOptions {
  /** The most tokens to generate (default 32). */
  maxNewTokens?: number;
  /** Token ids that end generation (kept in the output, as transformers does). */
  eosIds?: readonly number[];
  /** Texts that end generation once the generated text contains one (needs `decode`); the text is cut before it. */
  stopStrings?: readonly string[];
  /** The tokenizer's decode, for stop strings and `text`. */
  decode?: (ids: number[]) => string;
  /** 'bf16': matmuls and attention in bfloat16, as a bf16 training step (default 'fp32'). */
  precision?: Precision;
  /** The sampling Rng's seed (default 0). */
  seed?: number;
  /** Called with each new token as it is chosen (streaming); returning false stops generation. */
  onToken?: (id: number) => void | boolean;
}

export type StopReason = 'length' | 'eos' | 'stop' | 'callback';

export interface GenerateResult {
  /** The generated ids (the prompt not included). */
  ids: number[];
  /** Their decoded text, cut before a stop string (when `decode` was given). */
  text?: string;
  stopReason: StopReason;
}

/** The logits of the last position of a [1, T, vocab] forward, read from any device (bfloat16 widened). */
async function lastRow(logits: Tensor): Promise<Float32Array> {
  const vocab = logits.shape[logits.ndim - 1];
  const values = await logits.read();
  const row = values.subarray(values.length - vocab);
  if (logits.dtype !== 'bfloat16') return Float32Array.from(row);
  return new Float32Array(Uint32Array.from(row, (bits) => bits << 16).buffer);
}

/** One cached forward of `ids` (batch 1, int32 on the model's device) and the next-token logits. */
export async function cachedStep(model: CausalLm, ids: readonly number[], cache: KvCache, precision: Precision = 'fp32'): Promise<Float32Array> {
  const device = model.parameters()[0]?.device;
  const input = Tensor.from(ids, [1, ids.length], 'int32', device);
  const logits = withComputePrecision(precision, () => noGrad(() => model.forward(input, cache)));
  cache.advance(ids.length);
  return lastRow(logits);
}

function checkOptions(promptIds: readonly number[], o: GenerateOptions): number {
  checkSampling(o);
  const max = o.maxNewTokens ?? 32;
  if (!Number.isInteger(max) || max < 0) throw new Error(`generate: maxNewTokens must be an integer >= 0, got ${max}`);
  if (promptIds.length === 0) throw new Error('generate: the prompt needs at least one token id');
  if (o.stopStrings?.length && !o.decode) throw new Error('generate: stopStrings need the tokenizer\'s decode');
  return max;
}

/** The first stop string's index in `text`, or -1. */
function stopAt(text: string, stops: readonly string[]): number {
  const at = stops.map((s) => text.indexOf(s)).filter((i) => i >= 0);
  return at.length ? Math.min(...at) : -1;
}

/**
 * Generates up to maxNewTokens after `promptIds` with a KV cache (batch 1) on the model's device,
 * the model in eval mode for the call (its train/eval mode restored after).
 */
export async function generate(model: CausalLm, promptIds: readonly number[], options: GenerateOptions = {}): Promise<GenerateResult> {
  const tokens = generateStream(model, promptIds, options);
  for (;;) {
    const step = await tokens.next();
    if (step.done) return step.value;
  }
}

/**
 * generate() as a stream: yields each new token as it is chosen, and returns the result. Leaving
 * the loop early (break) ends generation and restores the model's train/eval mode.
 */
export async function* generateStream(model: CausalLm, promptIds: readonly number[], options: GenerateOptions = {}): AsyncGenerator<number, GenerateResult> {
  const max = checkOptions(promptIds, options);
  const wasTraining = model.training;
  model.eval();
  try {
    return yield* decodeLoop(model, promptIds, max, options);
  } finally {
    model.train(wasTraining);
  }
}

async function* decodeLoop(model: CausalLm, promptIds: readonly number[], max: number, o: GenerateOptions): AsyncGenerator<number, GenerateResult> {
  const rng = new Rng(o.seed ?? 0);
  const cache = new KvCache();
  const seen = [...promptIds];
  const ids: number[] = [];
  const eos = new Set(o.eosIds ?? []);
  const finish = (stopReason: StopReason): GenerateResult => {
    if (!o.decode) return { ids, stopReason };
    const text = o.decode(ids);
    const cut = stopAt(text, o.stopStrings ?? []);
    return { ids, text: cut >= 0 ? text.slice(0, cut) : text, stopReason };
  };
  if (max === 0) return finish('length');
  let logits = await cachedStep(model, promptIds, cache, o.precision);
  for (;;) {
    const next = sampleToken(logits, seen, o, rng);
    ids.push(next);
    seen.push(next);
    yield next;
    if (o.onToken?.(next) === false) return finish('callback');
    if (eos.has(next)) return finish('eos');
    if (o.stopStrings?.length && stopAt(o.decode!(ids), o.stopStrings) >= 0) return finish('stop');
    if (ids.length >= max) return finish('length');
    logits = await cachedStep(model, [next], cache, o.precision);
  }
}
