/**
 * What yielding the event loop costs the decode loop (generate.ts, GenerateOptions.turnEveryMs):
 * cpu µs a token of greedy decoding with a turn after every token, once per 10 ms (the default) and
 * never, interleaved in random order in one process, one thread. A tiny GPT-2 (2 layers, width
 * 128, vocabulary 256) is the worst case: its tokens are the cheapest, so a turn's cost shows most.
 *
 *   node dist/bench/decode_turns.js [--runs 40] [--tokens 300]
 */
import { parseArgs } from 'node:util';
import { type CausalLm, generate } from '../src/generate/generate.js';
import { type ModelSpec, createModel } from '../src/nn/models/index.js';
import { backend } from '../src/tensor/dispatch.js';
import { median } from './lib/index.js';

const SPEC: ModelSpec = { type: 'gpt2', vocabSize: 256, context: 1024, layers: 2, width: 128, heads: 4, dropout: 0 };
const VARIANTS = { 'every token': 0, 'every 10 ms': 10, never: Infinity } as const;

/** Cpu µs a token of one generation (user + system time of this process). */
async function cpuPerToken(model: CausalLm, tokens: number, turnEveryMs: number): Promise<number> {
  const before = process.cpuUsage();
  const r = await generate(model, [1, 2, 3], { maxNewTokens: tokens, turnEveryMs });
  const used = process.cpuUsage(before);
  return (used.user + used.system) / r.ids.length;
}

const { values } = parseArgs({ options: { runs: { type: 'string' }, tokens: { type: 'string' } } });
const runs = Number(values.runs ?? 40);
const tokens = Number(values.tokens ?? 300);
backend().setThreads(1);
const model = createModel(SPEC, 3).eval() as CausalLm;
const names = Object.keys(VARIANTS) as (keyof typeof VARIANTS)[];
const cpu = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<keyof typeof VARIANTS, number[]>;
for (const n of names) await cpuPerToken(model, tokens, VARIANTS[n]);
for (let r = 0; r < runs; r++) {
  for (const n of [...names].sort(() => Math.random() - 0.5)) cpu[n].push(await cpuPerToken(model, tokens, VARIANTS[n]));
}
const never = median(cpu.never);
console.log(`| turns | cpu µs a token (median of ${runs} × ${tokens} tokens) | against never |`);
console.log('|---|---|---|');
for (const n of names) console.log(`| ${n} | ${median(cpu[n]).toFixed(1)} | ${(median(cpu[n]) / never).toFixed(3)}× |`);
