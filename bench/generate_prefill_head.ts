/**
 * The prefill's LM head at every prompt position against the last only (KvCache lastPositionOnly,
 * issue 31 §5): prefill ms of a 32-token prompt at batch 1 and 8, GPT-2 124M and the SmolLM2-135M
 * shape (random weights), fp32 and bf16, one thread, the two variants interleaved in one process.
 *
 *   node dist/bench/generate_prefill_head.js [--repeats 5]
 */
import { parseArgs } from 'node:util';
import { inferenceForward, weightCasts } from '../src/generate/inference_forward.js';
import type { CausalLm } from '../src/generate/generate.js';
import { KvCache, SequenceCache } from '../src/generate/kv_cache.js';
import { createModel, defaultSpec } from '../src/nn/index.js';
import { backend } from '../src/tensor/dispatch.js';
import type { Precision } from '../src/tensor/precision.js';
import { Tensor } from '../src/tensor/tensor.js';
import { median } from './lib/index.js';
import { promptIds } from './lib/generation_run.js';

const MODELS = { gpt2: 50257, 'smollm2-135m': 49152 } as const;

/** One prefill's milliseconds (the logits read back, as generation does). */
async function prefillMs(model: CausalLm, prompts: number[][], precision: Precision, lastOnly: boolean, casts: ReturnType<typeof weightCasts>): Promise<number> {
  const cache = new KvCache(prompts.map(() => new SequenceCache()), { lastPositionOnly: lastOnly });
  const t0 = performance.now();
  const logits = inferenceForward(model, Tensor.from(prompts.flat(), [prompts.length, prompts[0].length], 'int32'), cache, precision, casts);
  await logits.read();
  return performance.now() - t0;
}

const { values } = parseArgs({ options: { repeats: { type: 'string' } } });
const repeats = Number(values.repeats ?? 5);
backend().setThreads(1);
console.log('| model | dtype | batch | every position (ms) | last only (ms) | speed-up |');
console.log('|---|---|---|---|---|---|');
for (const [id, vocab] of Object.entries(MODELS) as [keyof typeof MODELS, number][]) {
  const spec = defaultSpec(id, [256], vocab);
  const model = createModel(spec, 1234).eval() as CausalLm;
  for (const precision of ['fp32', 'bf16'] as const) {
    const casts = weightCasts(model, precision);
    for (const batch of [1, 8]) {
      const prompts = promptIds(1234, batch, 32, vocab);
      await prefillMs(model, prompts, precision, false, casts);
      const all: number[] = [];
      const last: number[] = [];
      for (let r = 0; r < repeats; r++) {
        all.push(await prefillMs(model, prompts, precision, false, casts));
        last.push(await prefillMs(model, prompts, precision, true, casts));
      }
      const [a, l] = [median(all), median(last)];
      console.log(`| ${id} | ${precision} | ${batch} | ${a.toFixed(0)} | ${l.toFixed(0)} | ${(a / l).toFixed(2)}× |`);
    }
  }
}
