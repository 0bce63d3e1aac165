/**
 * bench:generate — generation speed on one thread (or --threads N, every engine alike): decode tokens/s at batch 1 and 8 (prompt 32, 128
 * new tokens, greedy, KV cache) and prefill tokens/s, for GPT-2 124M and the SmolLM2-135M shape with
 * random weights (seeded), fp32 and bf16, side by side in one run with
 *   (a) transformers' `generate` with its cache (bench/reference/generate_torch.py; bf16 = the model
 *       in torch.bfloat16), and
 *   (b) llama.cpp through the npm package node-llama-cpp (cpu, one thread) on GGUF files written from
 *       the same weights with the pip package `gguf` (bench/reference/hf_to_gguf.py: F32 and BF16).
 *
 *   npm run bench:generate [-- --only gpt2,smollm2-135m] [--dtypes fp32,bf16] [--repeats 2] [--new-tokens 128] [--threads 1] [--layers N]
 *
 * The Qwen2.5-0.5B shape runs too, and the Llama 3.2 1B shape where --only names it (llama-3.2-1b:
 * its widths whole 256-blocks, so its Q4_K_M file is the K-quants a Llama's is).
 *
 * The weights are written once as a Hugging Face folder (saveFolder) that transformers loads and the
 * GGUF files are converted from; our child builds the same model from the same seed. Every engine
 * runs in a child of its own per model and dtype (warm-up generations: ours and llama.cpp
 * WARM_UP_GENERATIONS of batch 1 and WARM_UP_TOKENS, lib/generation_run.ts; then batch 1 and batch 8);
 * repeats are interleaved (the engines' order rotates each repeat) and each repeat's figure is shown.
 * Ours in bf16 is `generate`'s precision 'bf16' (matmuls and attention on bfloat16 operands cast from
 * the float32 weights, docs/PRECISION.md), the casts held for the model's life as a model loaded with
 * `--precision bf16` holds them (generate/model_casts.ts): the warm-up generations (ours: a batch of 1
 * and one of 2) make them and pack them (packed_weights.ts), so the
 * timed prefill no longer includes casting every weight (transformers' bf16 model is cast at load).
 *
 * Decode at batch 1 is also read against the memory-bandwidth bound: every weight is read once per
 * token, so tokens/s ≤ read bandwidth ÷ weight bytes per token (all parameters but the position table,
 * and the input embedding where an lm head of its own reads instead; 4 bytes each in fp32, 2 in bf16;
 * the KV cache's few MB left out). The bandwidth is this core's, measured here on one thread
 * (bench/lib/read_bandwidth.ts, and numpy's sum where a Python has it: the faster is taken), and
 * again in each engine's process just before and after its timed batch-1 run (besideRun): a shared
 * host's bandwidth moves between minutes, so each run is also read against the bound of its own.
 * `--layers N` shrinks both models (a smoke run of the code paths, not a figure to report);
 * `--report FILE` re-prints the tables of a finished run from its log's last (JSON) line.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findPythonWith, machineInfo, packageRoot, parseOnly, pythonCandidates, runJsonChild, threadEnv } from './lib/index.js';
import { type EngineReport, promptIds } from './lib/generation_run.js';
import { oursGeneration } from './lib/generate_ours.js';
import { llamaCppGeneration, loadNodeLlamaCpp } from './lib/generate_llama_cpp.js';
import { measureReadBandwidth, type ReadBandwidth } from './lib/read_bandwidth.js';
import { benchFromJson, printGenerationReport, type Bench } from './lib/generate_report.js';
import { saveFolder } from '../src/nn/interchange/hf_folder.js';
import { type LlamaSpec, type ModelSpec, createModel, defaultSpec } from '../src/nn/index.js';
import type { Precision } from '../src/tensor/precision.js';
import { readGgufHeader } from '../src/nn/interchange/gguf.js';
import { exportGguf } from '../src/nn/interchange/gguf_export.js';
import { loadGgufModel } from '../src/nn/interchange/gguf_llama.js';
import type { Module } from '../src/nn/module.js';

const MODELS = ['gpt2', 'smollm2-135m', 'qwen2.5-0.5b', 'llama-3.2-1b'] as const;
type ModelId = (typeof MODELS)[number];
/** What runs without --only: the 1B shape (5 GB in fp32, a Q4_K_M file of Q4_K and Q6_K only) is asked for by name. */
const DEFAULT_MODELS: readonly ModelId[] = ['gpt2', 'smollm2-135m', 'qwen2.5-0.5b'];
const VOCAB: Record<ModelId, number> = { gpt2: 50257, 'smollm2-135m': 49152, 'qwen2.5-0.5b': 151936, 'llama-3.2-1b': 128256 };
const DTYPES = ['fp32', 'bf16', 'q8_0', 'q4_0', 'q4_k_m', 'q5_k_m'] as const;
type Dtype = (typeof DTYPES)[number];
/** The quantized rows: both engines run the same GGUF file (ours through loadGenerator's reader), transformers none. */
const QUANTIZED: readonly Dtype[] = ['q8_0', 'q4_0', 'q4_k_m', 'q5_k_m'];
const isQuantized = (d: Dtype): boolean => QUANTIZED.includes(d);
const ENGINES = ['smolcluster', 'transformers', 'llama.cpp'] as const;
type Engine = (typeof ENGINES)[number];
const SEED = 1234;
const PROMPT = 32;

function specOf(id: ModelId, layers?: number): ModelSpec {
  return defaultSpec(id, [256], VOCAB[id], layers !== undefined ? { layers } : {});
}

/** Bytes decode reads per token at batch 1 (header comment), per weight byte width. */
function weightsPerToken(model: Module): number {
  const named = model.namedParameters();
  const ownHead = named.some(([n]) => n === 'lm_head.weight');
  return named.filter(([n]) => !n.endsWith('wpe.weight') && !(ownHead && n.endsWith('embed_tokens.weight'))).reduce((s, [, p]) => s + p.size, 0);
}

interface Prepared { folder: string; gguf: Partial<Record<Dtype, string>>; weights: number; bytesPerToken: Partial<Record<Dtype, number>>; ggufSkip?: string }

/** Bytes a decode step reads from a GGUF file's tensors: all of them but an embedding that a head of its own replaces. */
async function fileBytesPerToken(path: string): Promise<number> {
  const file = await readGgufHeader(path);
  const ownHead = file.tensors.has('output.weight');
  return [...file.tensors.values()].filter((t) => !(ownHead && t.name === 'token_embd.weight')).reduce((n, t) => n + t.bytes, 0);
}

/** A quantized GGUF file of the folder: legacy types by gguf-py (hf_to_gguf.py), Q4_K_M and Q5_K_M by our writer (llama.cpp's mixes). */
async function writeQuantizedGguf(python: string, script: string, folder: string, model: Module, spec: ModelSpec, dtype: Dtype, file: string): Promise<string | null> {
  if (dtype !== 'q4_k_m' && dtype !== 'q5_k_m') return spawnPython(python, [script, folder, file, '--dtype', dtype]);
  const tokenizer = join(folder, 'stand-in-tokenizer.json');
  // Token ids only are fed: a stand-in vocabulary of the model's size (llama.cpp needs a tokenizer in the file).
  writeFileSync(tokenizer, JSON.stringify({ model: { type: 'BPE', vocab: Object.fromEntries(Array.from({ length: (spec as LlamaSpec).vocabSize }, (_, i) => [`t${i}`, i])), merges: [] }, pre_tokenizer: { type: 'ByteLevel' } }));
  await exportGguf(file, model, spec as LlamaSpec, { quantize: dtype, tokenizer: { json: tokenizer } });
  return null;
}

/** The Hugging Face folder and GGUF files of one model, written under `work`. */
async function prepare(id: ModelId, work: string, layers: number | undefined, dtypes: readonly Dtype[], gguf: string | null, ggufWhy: string): Promise<Prepared> {
  const spec = specOf(id, layers);
  const model = createModel(spec, SEED);
  const folder = join(work, id);
  saveFolder(folder, model, spec);
  const out: Prepared = { folder, gguf: {}, weights: weightsPerToken(model), bytesPerToken: {} };
  if (gguf === null) return { ...out, ggufSkip: ggufWhy };
  const script = join(packageRoot(import.meta.url), 'bench', 'reference', 'hf_to_gguf.py');
  for (const d of dtypes) {
    if (isQuantized(d) && spec.type !== 'llama') continue;
    const file = join(work, `${id}-${d}.gguf`);
    const r = isQuantized(d) ? await writeQuantizedGguf(gguf, script, folder, model, spec, d, file) : spawnPython(gguf, [script, folder, file, '--dtype', d === 'fp32' ? 'f32' : 'bf16']);
    if (r !== null) return { ...out, ggufSkip: `hf_to_gguf.py failed: ${r}` };
    out.gguf[d] = file;
    if (isQuantized(d)) out.bytesPerToken[d] = await fileBytesPerToken(file);
  }
  return out;
}

function spawnPython(python: string, args: string[]): string | null {
  const r = spawnSync(python, args, { encoding: 'utf8', timeout: 10 * 60_000, maxBuffer: 1 << 24 });
  return r.status === 0 ? null : (r.stderr || r.stdout || String(r.error)).trim().split('\n').slice(-2).join(' | ');
}

interface Plan { ids: ModelId[]; dtypes: Dtype[]; batches: number[]; newTokens: number; repeats: number; threads: number; layers?: number }

async function parent(plan: Plan): Promise<void> {
  const root = packageRoot(import.meta.url);
  const self = fileURLToPath(import.meta.url);
  // The project's torch venv too (issue 31: torch 2.13 at /opt/torchvenv or $SMOLCLUSTER_PYTHON).
  const candidates = [...pythonCandidates(), '/opt/torchvenv/bin/python'];
  const transformers = findPythonWith('transformers', candidates);
  const gguf = findPythonWith('gguf', candidates);
  const llamaCpp = await loadNodeLlamaCpp();
  const skip: Partial<Record<Engine, string>> = {};
  if (!transformers.found) skip.transformers = transformers.reason;
  if (typeof llamaCpp === 'string') skip['llama.cpp'] = llamaCpp;
  else if (!gguf.found) skip['llama.cpp'] = `cannot write GGUF files: ${gguf.reason}`;
  for (const [e, why] of Object.entries(skip)) console.log(`bench:generate: ${e} skipped: ${why}`);

  const work = mkdtempSync(join(tmpdir(), 'smolcluster-bench-generate-'));
  try {
    const prompts = promptIds(SEED, Math.max(...plan.batches), PROMPT, Math.min(...plan.ids.map((id) => VOCAB[id])));
    const promptFile = join(work, 'prompts.json');
    writeFileSync(promptFile, JSON.stringify(prompts));
    const prepared = {} as Record<ModelId, Prepared>;
    for (const id of plan.ids) {
      prepared[id] = await prepare(id, work, plan.layers, plan.dtypes, skip['llama.cpp'] ? null : gguf.found!.python, skip['llama.cpp'] ?? '');
      if (prepared[id].ggufSkip && !skip['llama.cpp']) console.log(`bench:generate: llama.cpp skipped for ${id}: ${prepared[id].ggufSkip}`);
    }
    const bandwidth = await readBandwidth(root, transformers.found?.python ?? null);
    const common = ['--prompts', promptFile, '--batches', plan.batches.join(','), '--new-tokens', String(plan.newTokens), '--threads', String(plan.threads)];
    const runEngine = async (engine: Engine, id: ModelId, dtype: Dtype): Promise<EngineReport | string> => {
      if (skip[engine]) return 'skipped';
      const p = prepared[id];
      if (isQuantized(dtype) && specOf(id).type !== 'llama') return 'not run (quantized rows: the Llama family)';
      if (isQuantized(dtype) && engine === 'transformers') return 'not run (transformers dequantizes a GGUF file at load: no quantized cpu kernels)';
      if (isQuantized(dtype) && engine === 'smolcluster' && !p.gguf[dtype]) return 'not run (no GGUF file)';
      const depth = plan.layers !== undefined ? ['--layers', String(plan.layers)] : [];
      const [cmd, args] = engine === 'transformers'
        ? [transformers.found!.python, [join(root, 'bench', 'reference', 'generate_torch.py'), '--folder', p.folder, '--model', id, '--dtype', dtype, ...common]]
        : engine === 'llama.cpp'
          ? (p.gguf[dtype] ? [process.execPath, [self, '--worker', engine, '--gguf', p.gguf[dtype]!, '--model', id, '--dtype', dtype, ...common]] : [null, []])
          : [process.execPath, ['--max-old-space-size=8192', self, '--worker', engine, '--model', id, '--dtype', dtype, ...depth, ...(isQuantized(dtype) ? ['--gguf', p.gguf[dtype]!] : []), ...common]];
      if (cmd === null) return 'skipped';
      const r = await runJsonChild<EngineReport>(cmd, args as string[], { env: threadEnv(plan.threads), timeoutMs: 20 * 60_000, stderr: 'pipe' });
      return r.value && !r.error ? r.value : (r.error ?? 'no report');
    };
    const results: Bench['results'] = [];
    for (let rep = 0; rep < plan.repeats; rep++) {
      for (const id of plan.ids) {
        for (const dtype of plan.dtypes) {
          const order = ENGINES.map((_, i) => ENGINES[(i + rep) % ENGINES.length]);
          for (const engine of order) {
            const t0 = Date.now();
            const report = await runEngine(engine, id, dtype);
            console.error(`bench:generate: repeat ${rep + 1} ${id} ${dtype} ${engine}: ${typeof report === 'string' ? report : 'ok'} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
            results.push({ repeat: rep, model: id, dtype, engine, report });
          }
        }
      }
    }
    const weights = Object.fromEntries(plan.ids.map((id) => [id, prepared[id].weights])) as Record<string, number>;
    const bytesPerToken = Object.fromEntries(plan.ids.map((id) => [id, prepared[id].bytesPerToken])) as Record<string, Record<string, number>>;
    printGenerationReport({ plan, results, bandwidth, weights, bytesPerToken, machine: machineInfo(), skip, llamaCppVersion: typeof llamaCpp === 'string' ? null : llamaCpp.version });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** This core's read bandwidth: ours (memchr) and numpy's sum where a Python has it; the faster (per CPU-second) is the bound. */
async function readBandwidth(root: string, python: string | null): Promise<Bench['bandwidth']> {
  const ours: ReadBandwidth & { how: string } = { ...measureReadBandwidth(), how: 'Buffer.indexOf (memchr)' };
  if (python === null) return { best: ours, all: [ours] };
  const r = await runJsonChild<ReadBandwidth & { how: string }>(python, [join(root, 'bench', 'reference', 'read_bandwidth.py')], { env: threadEnv(1), stderr: 'pipe' });
  const all = r.value ? [ours, r.value] : [ours];
  return { best: all.reduce((a, b) => (b.gbPerCpuSec > a.gbPerCpuSec ? b : a)), all };
}

/** Child: one engine of ours (smolcluster or llama.cpp) on one model and dtype; prints an EngineReport. */
async function worker(engine: string, id: ModelId, dtype: Dtype, promptFile: string, batches: number[], newTokens: number, threads: number, layers?: number, ggufPath?: string): Promise<void> {
  const onThreads = `${threads} thread${threads === 1 ? '' : 's'}`;
  const prompts = JSON.parse(readFileSync(promptFile, 'utf8')) as number[][];
  let report: EngineReport;
  if (engine === 'llama.cpp') {
    const { runs, version } = await llamaCppGeneration(ggufPath!, prompts, batches, newTokens, threads);
    report = { engine, model: id, dtype, detail: `node-llama-cpp ${version}, cpu, ${onThreads}, GGUF ${dtype === 'fp32' ? 'F32' : dtype.toUpperCase()}`, runs };
  } else if (isQuantized(dtype)) {
    // The same file llama.cpp runs, read as `--model FILE.gguf` reads it: matrices in their blocks, in huge pages,
    // repacked where the cpu's products read a layout of their own (Q4_0's, Q8_0's and Q5_0's rows interleaved by eight on AVX512-VNNI).
    const { model } = loadGgufModel(await readGgufHeader(ggufPath!), undefined, { hugePages: true, repack: true });
    const runs = await oursGeneration(() => model, prompts, batches, newTokens, 'fp32', threads);
    report = { engine: 'smolcluster', model: id, dtype, detail: `native backend, ${onThreads}, the GGUF file's ${dtype.toUpperCase()} blocks (integer products of a few rows; more rows, with AVX512-VNNI, integer GEMMs over repacked tiles, else dequantized tiles + GEMM)`, runs };
  } else {
    const precision = dtype as Precision;
    const runs = await oursGeneration(() => createModel(specOf(id, layers), SEED), prompts, batches, newTokens, precision, threads);
    const casts = dtype === 'bf16' ? ', weights cast to bf16 once for the model\'s life (and packed) in the warm-up, as at a server\'s first requests' : '';
    report = { engine: 'smolcluster', model: id, dtype, detail: `native backend, ${onThreads}, precision ${dtype}${casts}`, runs };
  }
  console.log(JSON.stringify(report));
}

const { values } = parseArgs({
  options: {
    worker: { type: 'string' }, model: { type: 'string' }, dtype: { type: 'string' }, prompts: { type: 'string' }, gguf: { type: 'string' },
    only: { type: 'string' }, dtypes: { type: 'string' }, batches: { type: 'string' }, 'new-tokens': { type: 'string' },
    repeats: { type: 'string' }, threads: { type: 'string' }, layers: { type: 'string' }, report: { type: 'string' },
  },
});
const positiveInt = (flag: string, v: string | undefined, dflt: number): number => {
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`bench:generate: --${flag} must be a positive integer, got ${v}`);
  return n;
};
const batches = (values.batches ?? '1,8').split(',').map((b) => positiveInt('batches', b, 1));
const newTokens = positiveInt('new-tokens', values['new-tokens'], 128);
const layers = values.layers === undefined ? undefined : positiveInt('layers', values.layers, 1);
const threads = positiveInt('threads', values.threads, 1);
if (values.report) {
  // Re-print the tables of a finished run from its JSON line (the log's last line).
  const lines = readFileSync(values.report, 'utf8').trim().split('\n');
  printGenerationReport(benchFromJson(lines[lines.length - 1]), false);
} else if (values.worker) {
  await worker(values.worker, values.model as ModelId, values.dtype as Dtype, values.prompts!, batches, newTokens, threads, layers, values.gguf);
} else {
  await parent({
    ids: values.only === undefined ? [...DEFAULT_MODELS] : parseOnly(values.only, MODELS), dtypes: parseOnly(values.dtypes, DTYPES), batches, newTokens,
    repeats: positiveInt('repeats', values.repeats, 2), threads, ...(layers !== undefined ? { layers } : {}),
  });
}
