/**
 * A request's n choices from one prefill (the prompt's cache copied to each other choice, issue 49)
 * against n requests of the same prompt (prefilled together, one [n, T] forward): the scheduler's
 * wall-clock ms until every choice has its tokens, and until the first tokens, on the SmolLM2-135M
 * shape (random weights), fp32, one thread, the two variants interleaved in one process.
 *
 *   node dist/bench/serve_choices.js [--repeats 3] [--n 8] [--prompt 128] [--tokens 16]
 */
import { parseArgs } from 'node:util';
import type { CausalLm } from '../src/generate/generate.js';
import type { SequenceOptions } from '../src/generate/sequence.js';
import { createModel, defaultSpec } from '../src/nn/index.js';
import { BatchScheduler } from '../src/serve/scheduler.js';
import { backend } from '../src/tensor/dispatch.js';
import { median } from './lib/index.js';
import { promptIds } from './lib/generation_run.js';

const { values } = parseArgs({ options: { repeats: { type: 'string' }, n: { type: 'string' }, prompt: { type: 'string' }, tokens: { type: 'string' } } });
const repeats = Number(values.repeats ?? 3);
const n = Number(values.n ?? 8);
const VOCAB = 49152;
backend().setThreads(1);
const model = createModel(defaultSpec('smollm2-135m', [256], VOCAB), 1234).eval() as CausalLm;
const [prompt] = promptIds(1234, 1, Number(values.prompt ?? 128), VOCAB);
const options = (i: number): SequenceOptions => ({ maxNewTokens: Number(values.tokens ?? 16), temperature: 1, seed: i });
const scheduler = new BatchScheduler(model, { maxBatch: n, queueTimeoutMs: 600_000 });

/** ms until every choice's first token, and until all are done. */
async function timed(run: (onToken: () => void) => Promise<unknown>): Promise<[number, number]> {
  const t0 = performance.now();
  let tokens = 0;
  let first = 0;
  await run(() => {
    if (++tokens === n) first = performance.now() - t0;
  });
  return [first, performance.now() - t0];
}
const shared = (onToken: () => void): Promise<unknown> => scheduler.submitChoices({ promptIds: prompt, choices: Array.from({ length: n }, (_, i) => options(i)), onToken });
const separate = (onToken: () => void): Promise<unknown> => Promise.all(Array.from({ length: n }, (_, i) => scheduler.submit({ promptIds: prompt, options: options(i), onToken })));

await timed(shared);
const runs = { shared: [] as [number, number][], separate: [] as [number, number][] };
for (let r = 0; r < repeats; r++) {
  runs.shared.push(await timed(shared));
  runs.separate.push(await timed(separate));
}
scheduler.close();
console.log(`| ${n} choices of a ${prompt.length}-token prompt, ${options(0).maxNewTokens} tokens each | first tokens (ms) | all done (ms) |`);
console.log('|---|---|---|');
for (const [name, rs] of [[`n = ${n}: one prefill, cache copied`, runs.shared], [`${n} requests: ${n} prompt rows prefilled together`, runs.separate]] as const) {
  console.log(`| ${name} | ${median(rs.map((x) => x[0])).toFixed(0)} | ${median(rs.map((x) => x[1])).toFixed(0)} |`);
}
