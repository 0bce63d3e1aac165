/**
 * bench:serve — the server's aggregate throughput (issue 31 §5): `smolcluster serve` in a child of
 * its own on 127.0.0.1 (one compute thread), GPT-2 124M and the SmolLM2-135M shape with random
 * weights (seeded, written as a Hugging Face folder), driven over HTTP like real clients: one stream,
 * then 8 concurrent streams, each a streamed /v1/completions of a 32-token prompt, greedy, 128 new
 * tokens with `ignore_eos` (so every stream makes all of them). Reports each run's aggregate
 * tokens/s (every stream's completion tokens ÷ the wall time from the first request to the last
 * [DONE]), the time to the first token, and the ratio 8 streams ÷ 1 stream (target ≥ 3×).
 *
 *   npm run bench:serve [-- --only gpt2,smollm2-135m] [--streams 8] [--new-tokens 128] [--precision fp32|bf16] [--repeats 1] [--layers N] [--profile DIR] [--cli FILE,...] [--constrain]
 *
 * The client (this process: fetch, SSE parsing) shares the machine with the server; it is light
 * beside the model. `--layers N` shrinks both models (a smoke run of the code path, not a figure);
 * `--profile DIR` writes the server's CPU profile there (node --cpu-prof); `--cli A,B` serves with
 * each of several smolcluster CLI scripts in turn (a before/after comparison in one run).
 * `--constrain` runs each measure again with every stream under `response_format` json_schema
 * (CONSTRAINED_SCHEMA, bench/lib/serve_client.ts) on the same server, and reports constrained ÷ unconstrained tokens/s (issue
 * 48 §5, target ≥ 0.9): free and constrained runs alternate, CONSTRAINED_ROUNDS of each, each side's median reported. A constrained stream ends where its value is whole, so it may make fewer
 * tokens than asked: its tokens/s counts the tokens it made (the report says how many streams ended early).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { machineInfo, packageRoot, parseOnly } from './lib/index.js';
import { type Run, concurrent, startServer, stopServer } from './lib/serve_client.js';
import { promptIds } from './lib/generation_run.js';
import { saveFolder } from '../src/nn/interchange/hf_folder.js';
import { createModel, defaultSpec } from '../src/nn/index.js';

const MODELS = ['gpt2', 'smollm2-135m'] as const;
type ModelId = (typeof MODELS)[number];
const VOCAB: Record<ModelId, number> = { gpt2: 50257, 'smollm2-135m': 49152 };
/** The tokenizer the server loads: the SmolLM2 shape's folder has none, and ids are sent as ids anyway. */
const TOKENIZER: Record<ModelId, string> = { gpt2: 'gpt2', 'smollm2-135m': 'bytes' };
/** The ids prompts draw from: within the tokenizer's vocabulary, which the server checks them against. */
const PROMPT_VOCAB: Record<ModelId, number> = { gpt2: 50257, 'smollm2-135m': 256 };
const SEED = 1234;
const PROMPT = 32;

/** Runs of each side (free, constrained) with --constrain, alternating. */
const CONSTRAINED_ROUNDS = 3;
const median = (runs: readonly Run[]): Run => [...runs].sort((a, b) => a.tokensPerSecond - b.tokensPerSecond)[Math.floor(runs.length / 2)];

interface Plan { ids: ModelId[]; streams: number; newTokens: number; precision: string; repeats: number; layers?: number; profile?: string; clis: string[]; constrain: boolean }
interface ServerRun { one: Run; many: Run; constrained?: { one: Run; many: Run } }

/** One server's run: started on `folder`, warmed up, 1 stream then `streams` streams, stopped. */
async function serverRun(cli: string, id: ModelId, folder: string, prompts: number[][], plan: Plan): Promise<ServerRun> {
  const { url, child } = await startServer({ cli, folder, tokenizer: TOKENIZER[id], maxBatch: plan.streams, precision: plan.precision, profile: plan.profile });
  try {
    // Warm-up: one short stream, then a short batch (the first forwards allocate and, in bf16, cast).
    await concurrent(url, prompts, 1, 4);
    await concurrent(url, prompts, plan.streams, 4);
    const one = await concurrent(url, prompts, 1, plan.newTokens);
    const many = await concurrent(url, prompts, plan.streams, plan.newTokens);
    if (!plan.constrain) return { one, many };
    // The constrained warm-up builds the tokenizer's trie and the schema's first masks (once per server).
    await concurrent(url, prompts, plan.streams, 4, { constrain: true });
    // Free and constrained measures alternate, ROUNDS of each, and each side reports its median run:
    // on a shared machine the load drifts between runs, and alternating spreads it over both sides.
    const runs = { free1: [one], freeN: [many], con1: [] as Run[], conN: [] as Run[] };
    for (let round = 0; round < CONSTRAINED_ROUNDS; round++) {
      runs.con1.push(await concurrent(url, prompts, 1, plan.newTokens, { constrain: true }));
      runs.conN.push(await concurrent(url, prompts, plan.streams, plan.newTokens, { constrain: true }));
      if (round + 1 === CONSTRAINED_ROUNDS) break;
      runs.free1.push(await concurrent(url, prompts, 1, plan.newTokens));
      runs.freeN.push(await concurrent(url, prompts, plan.streams, plan.newTokens));
    }
    return { one: median(runs.free1), many: median(runs.freeN), constrained: { one: median(runs.con1), many: median(runs.conN) } };
  } finally {
    await stopServer(child);
  }
}

async function main(plan: Plan): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'smolcluster-bench-serve-'));
  const report: ({ model: ModelId; cli: string; repeat: number; ratio: number } & ServerRun)[] = [];
  try {
    for (const id of plan.ids) {
      const spec = defaultSpec(id, [256], VOCAB[id], plan.layers !== undefined ? { layers: plan.layers } : {});
      const folder = join(work, id);
      saveFolder(folder, createModel(spec, SEED), spec);
      const prompts = promptIds(SEED, plan.streams, PROMPT, PROMPT_VOCAB[id]);
      // Several CLIs (--cli, a before/after comparison) take turns each repeat, their order rotating.
      for (let repeat = 0; repeat < plan.repeats; repeat++) {
        for (let c = 0; c < plan.clis.length; c++) {
          const cli = plan.clis[(c + repeat) % plan.clis.length];
          const { one, many, constrained } = await serverRun(cli, id, folder, prompts, plan);
          report.push({ model: id, cli, repeat, one, many, ratio: many.tokensPerSecond / one.tokensPerSecond, ...(constrained ? { constrained } : {}) });
          console.error(`bench:serve: ${id} ${cli} repeat ${repeat + 1}: 1 stream ${one.tokensPerSecond.toFixed(1)} tokens/s, ${plan.streams} streams ${many.tokensPerSecond.toFixed(1)} (${(many.tokensPerSecond / one.tokensPerSecond).toFixed(2)}×)`);
        }
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const m = machineInfo();
  console.log(`\nbench:serve — smolcluster serve, 1 compute thread, ${plan.precision}, prompt ${PROMPT}, ${plan.newTokens} new tokens per stream, greedy, ignore_eos (${m.cpu}, load average ${m.loadAvg1})`);
  console.log(`| model | server | repeat | 1 stream tokens/s | ${plan.streams} streams tokens/s | ratio | first token, 1 stream (ms) | first token, ${plan.streams} streams (ms, min–max) |`);
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of report) {
    const f = r.many.firstTokenMs;
    console.log(`| ${r.model} | ${r.cli} | ${r.repeat + 1} | ${r.one.tokensPerSecond.toFixed(1)} | ${r.many.tokensPerSecond.toFixed(1)} | ${r.ratio.toFixed(2)}× | ${r.one.firstTokenMs[0].toFixed(0)} | ${Math.min(...f).toFixed(0)}–${Math.max(...f).toFixed(0)} |`);
  }
  if (plan.constrain) {
    console.log(`\nconstrained (response_format json_schema on every stream) ÷ unconstrained, same server (target ≥ 0.90):`);
    console.log(`| model | repeat | 1 stream tokens/s (constrained / free) | ratio | ${plan.streams} streams tokens/s (constrained / free) | ratio | streams ended early (1 / ${plan.streams}) |`);
    console.log('|---|---|---|---|---|---|---|');
    for (const r of report) {
      const c = r.constrained!;
      console.log(`| ${r.model} | ${r.repeat + 1} | ${c.one.tokensPerSecond.toFixed(1)} / ${r.one.tokensPerSecond.toFixed(1)} | ${(c.one.tokensPerSecond / r.one.tokensPerSecond).toFixed(2)} | ${c.many.tokensPerSecond.toFixed(1)} / ${r.many.tokensPerSecond.toFixed(1)} | ${(c.many.tokensPerSecond / r.many.tokensPerSecond).toFixed(2)} | ${c.one.endedEarly} / ${c.many.endedEarly} |`);
    }
  }
  console.log(JSON.stringify({ plan, report, machine: m }));
}

const { values } = parseArgs({
  options: {
    only: { type: 'string' }, streams: { type: 'string' }, 'new-tokens': { type: 'string' }, precision: { type: 'string' },
    repeats: { type: 'string' }, layers: { type: 'string' }, profile: { type: 'string' }, cli: { type: 'string' }, constrain: { type: 'boolean' },
  },
});
const positiveInt = (flag: string, v: string | undefined, dflt: number): number => {
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`bench:serve: --${flag} must be a positive integer, got ${v}`);
  return n;
};
const precision = values.precision ?? 'fp32';
if (precision !== 'fp32' && precision !== 'bf16') throw new Error(`bench:serve: --precision must be fp32 or bf16, got ${precision}`);
await main({
  ids: parseOnly(values.only, MODELS), streams: positiveInt('streams', values.streams, 8), newTokens: positiveInt('new-tokens', values['new-tokens'], 128),
  precision, repeats: positiveInt('repeats', values.repeats, 1), ...(values.layers !== undefined ? { layers: positiveInt('layers', values.layers, 1) } : {}),
  ...(values.profile !== undefined ? { profile: values.profile } : {}),
  clis: (values.cli ?? join(packageRoot(import.meta.url), 'dist', 'src', 'cli', 'main.js')).split(','),
  constrain: values.constrain === true,
});
