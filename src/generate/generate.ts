/**
 * Text generation from a causal language model (GPT-2, the Llama family): the prompt's prefill
 * fills a KV cache with one causal forward, then each new token is one forward of a single position
 * over the cache. Tokens are chosen by sampling.ts, and generation stops at max new tokens, an EOS id
 * or a stop string (found in the decoded text of the generated tokens).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { BufferRecycler } from '../tensor/recycler.js';
import type { CastCache } from '../tensor/ops/cast_cache.js';
import type { Precision } from '../tensor/precision.js';
import { Tensor } from '../tensor/tensor.js';
import { fromBf16BitsArray } from '../util/float_formats.js';
import type { AttentionCache } from '../nn/layers/attention.js';
import type { Module } from '../nn/module.js';
import { inferenceForward, stepRecycler, weightCasts } from './inference_forward.js';
import { KvCache, SequenceCache, reservedPositions } from './kv_cache.js';
import { StepLogits } from './step_logits.js';
import { type GenerateResult, Sequence, type SequenceOptions } from './sequence.js';

export type { GenerateResult, StopReason } from './sequence.js';

/** The longest a decode loop runs, by default, without yielding the event loop a turn (GenerateOptions.turnEveryMs). */
export const DEFAULT_TURN_EVERY_MS = 10;

/** A model whose forward continues a KV cache: GPT-2's and the Llama family's. */
export interface CausalLm extends Module {
  forward(ids: Tensor, cache?: AttentionCache): Tensor;
}

export interface GenerateOptions extends SequenceOptions {
  /** 'bf16': matmuls and attention in bfloat16, as a bf16 training step (default 'fp32'). */
  precision?: Precision;
  /** Called with each new token as it is chosen (streaming); returning false stops generation. */
  onToken?: (id: number) => void | boolean;
  /**
   * Milliseconds of decoding between turns yielded to the event loop (setImmediate), so input such as
   * chat's Ctrl-C is heard mid-reply (default 10; 0: after every token; Infinity: never).
   */
  turnEveryMs?: number;
}

/** Each row's logits at its last position, of an [N, T, vocab] forward, read from any device (bfloat16 widened). */
export async function lastLogits(logits: Tensor): Promise<Float32Array[]> {
  const [N, T, vocab] = logits.shape;
  const widened = await allLogits(logits);
  const last = (n: number): Float32Array => widened.subarray(((n + 1) * T - 1) * vocab, (n + 1) * T * vocab);
  // One position a row (a decode step): the rows of the copy read() owns, not copied again (at
  // SmolLM2's vocabulary 197 KB a token); of several, copied, so a row does not keep the whole forward's.
  return Array.from({ length: N }, (_, n) => (T === 1 ? last(n) : Float32Array.from(last(n))));
}

/** Every position's logits of an [N, T, vocab] forward, row-major, read from any device (bfloat16 widened). */
export async function allLogits(logits: Tensor): Promise<Float32Array> {
  const values = await logits.read();
  if (logits.dtype !== 'bfloat16') return values instanceof Float32Array ? values : Float32Array.from(values);
  return fromBf16BitsArray(values as Uint16Array);
}

/** One cached forward of `ids` (batch 1, int32 on the model's device) and the next-token logits (the last position's, whatever the cache's lastPositionOnly). */
export function cachedStep(model: CausalLm, ids: readonly number[], cache: KvCache, precision: Precision = 'fp32', casts: CastCache | null = null): Promise<Float32Array> {
  return recycledStep(model, ids, cache, precision, casts, null);
}

/** cachedStep with the generation's step recycler (inference_forward.ts stepRecycler), if any; with `into` (the decode loop's), the logits as its lastRow gives them: rewritten by the next step. */
async function recycledStep(
  model: CausalLm, ids: readonly number[], cache: KvCache, precision: Precision, casts: CastCache | null, recycler: BufferRecycler | null, into?: StepLogits,
): Promise<Float32Array> {
  const device = model.firstParameter()?.device;
  const input = Tensor.from(ids, [1, ids.length], 'int32', device);
  const logits = inferenceForward(model, input, cache, precision, casts, recycler);
  cache.advance(ids.length);
  return into ? into.lastRow(logits) : (await lastLogits(logits))[0];
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
  const sequence = new Sequence(promptIds, options);
  const wasTraining = model.training;
  model.eval();
  try {
    return yield* decodeLoop(model, sequence, options);
  } finally {
    model.train(wasTraining);
  }
}

/** The prompt's prefill when its logprobs are asked: the head at every position, each position's row scored; the last row's logits. */
async function scoredPrefill(model: CausalLm, sequence: Sequence, cache: KvCache, precision: Precision, casts: CastCache | null): Promise<Float32Array> {
  const ids = sequence.promptIds;
  const logits = inferenceForward(model, Tensor.from(ids, [1, ids.length], 'int32', model.firstParameter()?.device), cache, precision, casts);
  cache.advance(ids.length);
  const values = await allLogits(logits);
  const V = logits.shape[2];
  const row = (t: number): Float32Array => values.subarray(t * V, (t + 1) * V);
  sequence.scorePrompt(row);
  return Float32Array.from(row(ids.length - 1));
}

async function* decodeLoop(model: CausalLm, sequence: Sequence, o: GenerateOptions): AsyncGenerator<number, GenerateResult> {
  if (sequence.maxNewTokens === 0) return sequence.result('length');
  const scored = sequence.options.promptLogprobs !== undefined;
  const cache = new KvCache([new SequenceCache(reservedPositions(sequence.promptIds.length, sequence.maxNewTokens))], { lastPositionOnly: !scored });
  const casts = weightCasts(model, o.precision);
  const recycler = stepRecycler(model, o.precision);
  const precision = o.precision ?? 'fp32';
  const stepLogits = new StepLogits();
  let turned = performance.now();
  let logits = scored ? await scoredPrefill(model, sequence, cache, precision, casts) : await recycledStep(model, sequence.promptIds, cache, precision, casts, recycler, stepLogits);
  for (;;) {
    const next = sequence.choose(logits);
    yield next;
    if (o.onToken?.(next) === false) return sequence.result('callback');
    const stop = sequence.stopped();
    if (stop) return sequence.result(stop);
    // A cpu step resolves without leaving this event-loop turn: one is yielded every few ms, so input
    // (chat's Ctrl-C), timers and sockets are heard mid-reply. Every token costs a tiny model ~10 % (bench/decode_turns.ts).
    if (performance.now() - turned >= (o.turnEveryMs ?? DEFAULT_TURN_EVERY_MS)) {
      await nextTurn();
      turned = performance.now();
    }
    logits = await recycledStep(model, [next], cache, precision, casts, recycler, stepLogits);
  }
}
