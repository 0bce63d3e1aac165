/**
 * bench:generate's tables: per model, dtype and batch the decode and prefill tokens/s of each engine
 * (the median over the repeats, every repeat's figure beside it) with our ratios against transformers
 * and llama.cpp; decode at batch 1 against the memory-bandwidth bound; how far the engines' greedy
 * tokens agree; and one JSON line with everything.
 */
import type { MachineInfo } from './machine.js';
import type { ReadBandwidth } from './read_bandwidth.js';
import { median } from './stats.js';
import { type EngineReport, type GenerationRun, decodePerCpuSecond, decodePerSecond, prefillPerSecond } from './generation_run.js';

type Engine = 'smolcluster' | 'transformers' | 'llama.cpp';

export interface Bench {
  /** threads: absent in a log written before --threads (one thread). */
  plan: { ids: string[]; dtypes: string[]; batches: number[]; newTokens: number; repeats: number; threads?: number; layers?: number };
  results: Array<{ repeat: number; model: string; dtype: string; engine: Engine; report: EngineReport | string }>;
  bandwidth: { best: ReadBandwidth & { how: string }; all: Array<ReadBandwidth & { how: string }> };
  /** Weights read per decoded token (count, not bytes), per model. */
  weights: Record<string, number>;
  /** A quantized row's bytes read per decoded token, from its GGUF file's tensors, per model and dtype. */
  bytesPerToken?: Record<string, Record<string, number>>;
  machine: MachineInfo;
  skip: Partial<Record<Engine, string>>;
  llamaCppVersion: string | null;
}

/** Reads back the JSON line a run printed (bench:generate --report FILE re-prints its tables). */
export function benchFromJson(line: string): Bench {
  const j = JSON.parse(line) as Bench & { bench: string };
  if (j.bench !== 'generate') throw new Error(`bench:generate --report: not a bench:generate line (bench ${j.bench})`);
  return j;
}

const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const BYTES: Record<string, number> = { fp32: 4, bf16: 2 };

/** Each repeat's run of one engine at one batch, in repeat order (failed repeats left out). */
function runsOf(b: Bench, model: string, dtype: string, engine: Engine, batch: number): GenerationRun[] {
  return b.results
    .filter((r) => r.model === model && r.dtype === dtype && r.engine === engine && typeof r.report !== 'string')
    .map((r) => (r.report as EngineReport).runs.find((x) => x.batch === batch))
    .filter((x): x is GenerationRun => x !== undefined);
}

/** Why an engine has no figure here (its first failure), or null. */
function failureOf(b: Bench, model: string, dtype: string, engine: Engine): string | null {
  const f = b.results.find((r) => r.model === model && r.dtype === dtype && r.engine === engine && typeof r.report === 'string');
  return f ? (f.report as string) : null;
}

/** "median (r1, r2)" of a rate over the repeats, or "–". */
function cell(runs: GenerationRun[], rate: (r: GenerationRun) => number): string {
  if (runs.length === 0) return '–';
  const each = runs.map(rate);
  return runs.length > 1 ? `${fmt(median(each))} (${each.map(fmt).join(', ')})` : fmt(each[0]);
}

/** ours / theirs of the medians, with the per-repeat range (repeat i against repeat i). */
function ratioCell(ours: GenerationRun[], theirs: GenerationRun[], rate: (r: GenerationRun) => number): string {
  if (ours.length === 0 || theirs.length === 0) return '–';
  const m = median(ours.map(rate)) / median(theirs.map(rate));
  const n = Math.min(ours.length, theirs.length);
  const each = Array.from({ length: n }, (_, i) => rate(ours[i]) / rate(theirs[i]));
  return n > 1 ? `${m.toFixed(2)}× (${Math.min(...each).toFixed(2)}–${Math.max(...each).toFixed(2)})` : `${m.toFixed(2)}×`;
}

function printRates(b: Bench, what: 'decode' | 'prefill' | 'decode, CPU time'): void {
  const rate = what === 'decode' ? decodePerSecond : what === 'prefill' ? prefillPerSecond : decodePerCpuSecond;
  const unit = what === 'decode, CPU time' ? 'tokens per CPU-second of the process' : 'tokens/s';
  console.log(`\n${what}: ${unit} (median over the repeats, each repeat in brackets)`);
  console.log('| model | dtype | batch | smolcluster | transformers | llama.cpp | ours / transformers | ours / llama.cpp |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const model of b.plan.ids) {
    for (const dtype of b.plan.dtypes) {
      for (const batch of b.plan.batches) {
        const [o, t, l] = (['smolcluster', 'transformers', 'llama.cpp'] as const).map((e) => runsOf(b, model, dtype, e, batch));
        const why = (e: Engine, runs: GenerationRun[]): string => (runs.length ? cell(runs, rate) : b.skip[e] ? 'skipped' : failureOf(b, model, dtype, e) ?? '–');
        console.log(`| ${model} | ${dtype} | ${batch} | ${why('smolcluster', o)} | ${why('transformers', t)} | ${why('llama.cpp', l)} | ${ratioCell(o, t, rate)} | ${ratioCell(o, l, rate)} |`);
      }
    }
  }
}

/**
 * Decode at batch 1 against weight bytes ÷ read bandwidth, both per CPU-second of the process
 * (on an idle core the same as per wall-second; on a loaded one the wall clock counts other
 * processes' turns in both, unequally).
 */
function printBound(b: Bench): Array<Record<string, unknown>> {
  const bw = b.bandwidth.best.gbPerCpuSec;
  const each = b.bandwidth.all.map((x) => `${x.how} ${x.gbPerCpuSec.toFixed(2)} per CPU-second, ${x.gbPerSec.toFixed(2)} per wall-second`).join('; ');
  console.log(`\ndecode at batch 1 against the memory-bandwidth bound, in CPU time: this core's read bandwidth ${bw.toFixed(2)} GB per CPU-second (${each}; one thread, 2 GiB)`);
  console.log('(the last two columns: each run against the bandwidth read in its own process just before and after it, GenerationRun.readGbPerCpuSec)');
  console.log('| model | dtype | weight MB per token | bound tokens per CPU-second | smolcluster (fraction) | transformers (fraction) | llama.cpp (fraction) | smolcluster, bound beside the run | llama.cpp, bound beside the run |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  const rows: Array<Record<string, unknown>> = [];
  for (const model of b.plan.ids) {
    for (const dtype of b.plan.dtypes) {
      const bytes = b.bytesPerToken?.[model]?.[dtype] ?? b.weights[model] * BYTES[dtype];
      const bound = (bw * 1e9) / bytes;
      const frac = (e: Engine): [string, number | null] => {
        const runs = runsOf(b, model, dtype, e, 1);
        if (!runs.length) return ['–', null];
        const m = median(runs.map(decodePerCpuSecond));
        return [`${fmt(m)} (${((100 * m) / bound).toFixed(0)} %)`, m / bound];
      };
      const [o, t, l] = [frac('smolcluster'), frac('transformers'), frac('llama.cpp')];
      const [ob, lb] = [fractionBeside(b, model, dtype, 'smolcluster', bytes), fractionBeside(b, model, dtype, 'llama.cpp', bytes)];
      console.log(`| ${model} | ${dtype} | ${(bytes / 1e6).toFixed(0)} | ${fmt(bound)} | ${o[0]} | ${t[0]} | ${l[0]} | ${ob[0]} | ${lb[0]} |`);
      rows.push({ model, dtype, bytesPerToken: bytes, boundTokensPerSec: bound, fraction: { smolcluster: o[1], transformers: t[1], 'llama.cpp': l[1] },
        fractionBeside: { smolcluster: ob[1], 'llama.cpp': lb[1] } });
    }
  }
  return rows;
}

/**
 * An engine's decode at batch 1 against the bound of its own minutes: each run's tokens per
 * CPU-second over the bandwidth read beside it (GenerationRun.readGbPerCpuSec) ÷ the bytes per
 * token, the median over the repeats; the bandwidths in brackets.
 */
function fractionBeside(b: Bench, model: string, dtype: string, e: Engine, bytes: number): [string, number | null] {
  const runs = runsOf(b, model, dtype, e, 1).filter((r) => r.readGbPerCpuSec !== undefined);
  if (!runs.length) return ['–', null];
  const m = median(runs.map((r) => decodePerCpuSecond(r) / ((r.readGbPerCpuSec! * 1e9) / bytes)));
  return [`${(100 * m).toFixed(0)} % (${runs.map((r) => r.readGbPerCpuSec!.toFixed(1)).join(', ')} GB/s)`, m];
}

/** Leading greedy tokens two engines agree on (same weights; random-weight logits are close, so float rounding may part them). */
function printAgreement(b: Bench): void {
  console.log('\ngreedy tokens at batch 1 (first repeat): leading tokens equal to smolcluster\'s');
  for (const model of b.plan.ids) {
    for (const dtype of b.plan.dtypes) {
      const first = (e: Engine): number[] | null => runsOf(b, model, dtype, e, 1)[0]?.firstIds ?? null;
      const ours = first('smolcluster');
      const agree = (e: Engine): string => {
        const t = first(e);
        if (!ours || !t) return '–';
        let n = 0;
        while (n < ours.length && n < t.length && ours[n] === t[n]) n++;
        return `${n}/${ours.length}`;
      };
      console.log(`  ${model} ${dtype}: transformers ${agree('transformers')}, llama.cpp ${agree('llama.cpp')}`);
    }
  }
}

export function printGenerationReport(b: Bench, json = true): void {
  const { plan, machine } = b;
  const threads = plan.threads ?? 1;
  console.log(`\nbench:generate — ${threads === 1 ? 'one thread' : `${threads} threads`}, prompt 32, ${plan.newTokens} new tokens, greedy, random weights (seeded)${plan.layers !== undefined ? `, ${plan.layers} layer(s) (smoke run)` : ''}; ${plan.repeats} interleaved repeat(s)`);
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, load average ${machine.loadAvg1} at the end${machine.loadAvg1 > 0.5 ? ' (a loaded machine: figures are pessimistic, ratios less so)' : ''}`);
  const details = new Map<string, string>();
  for (const r of b.results) if (typeof r.report !== 'string') details.set(`${r.engine} ${r.dtype}`, r.report.detail);
  for (const [k, v] of details) console.log(`  ${k}: ${v}`);
  printRates(b, 'decode');
  printRates(b, 'decode, CPU time');
  printRates(b, 'prefill');
  const bound = printBound(b);
  printAgreement(b);
  if (json) console.log(JSON.stringify({ bench: 'generate', plan, machine, bandwidth: b.bandwidth, weights: b.weights, bound, skip: b.skip, llamaCppVersion: b.llamaCppVersion, results: b.results }));
}
