/**
 * npm run bench:generate-memory -- [--shape qwen2.5-0.5b] [--layers N] [--new-tokens 16] [--threads 2] [--dir DIR] [--only 'bf16 folder,GGUF']
 *
 * Issue 50 §1: the resident peak of `smolcluster generate` (the kernel's Maximum resident set size,
 * `/usr/bin/time -v`) against the target: weights' bytes (the file's tensors) + the KV cache at the
 * run's positions + 15 % + 150 MB of runtime. The model is the shape's random weights (seeded),
 * written once by our own saveFolder as a BF16, an F16 and an F32 Hugging Face folder and, where
 * Python has the `gguf` package, as a Q8_0 and an F16 GGUF file (bench/reference/hf_to_gguf.py), reused from --dir.
 *
 * Rows: a BF16 folder generating in bf16 and in fp32 (its matrices held in bfloat16 either way:
 * nn/interchange/inference_folder.ts), the F16 folder in fp32 (held as f16 blocks), the F32 folder
 * in fp32 and in bf16, the BF16 folder under `--quantize q8_0` (each matrix made into its blocks as
 * it is read; its target counts the weights it holds, not the file's), the Q8_0 and F16 files in fp32, and
 * GPT-2 124M's F32 folder in fp32 (whatever --shape says; read in place too, its Conv1D matrices
 * transposed as read). Each
 * line: the resident peak, the target, and the estimate generate printed before loading; for the
 * BF16 folder in bf16 and the F16 and F32 folders in fp32, `serve`'s peak too (--max-batch 1, one
 * completion of the same prompt; VmHWM from /proc).
 * Last line: one JSON object.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { kvBytes } from '../src/generate/inference_memory.js';
import { weightReport } from '../src/generate/weight_report.js';
import { saveFolder } from '../src/nn/interchange/hf_folder.js';
import { type ModelSpec, type ModelType, createModel, defaultSpec, gpt2Spec } from '../src/nn/models/index.js';
import { machineInfo } from './lib/machine.js';
import { findPythonWith } from './lib/python.js';
import { packageRoot } from './lib/index.js';
import { vmHwmBytes } from './lib/rss_sampler.js';

const SEED = 1234;
/** 64 bytes: the bytes tokenizer makes them 64 prompt tokens. */
const PROMPT = 'The quick brown fox jumps over the lazy dog; then it runs away. ';
const MB = 1e6;
const RUNTIME = 150 * MB;

/** weightBytes: the file's tensors' bytes, or under --quantize the blocks and float32 vectors it holds. */
interface Row { name: string; model: string; precision: 'fp32' | 'bf16'; weightBytes: number; serve?: boolean; quantize?: string; spec?: ModelSpec }

const { values } = parseArgs({ options: {
  shape: { type: 'string', default: 'qwen2.5-0.5b' }, layers: { type: 'string' }, 'new-tokens': { type: 'string', default: '16' },
  threads: { type: 'string', default: '2' }, dir: { type: 'string' }, only: { type: 'string' },
} });
const shape = values.shape!;
const VOCAB: Readonly<Record<string, number>> = { 'smollm2-135m': 49152, 'smollm2-360m': 49152, 'qwen2.5-0.5b': 151936, 'qwen3-0.6b': 151936, 'llama-3.2-1b': 128256 };
if (VOCAB[shape] === undefined) throw new Error(`--shape: one of ${Object.keys(VOCAB).join(', ')}`);
const spec = defaultSpec(shape as ModelType, [256], VOCAB[shape], values.layers ? { layers: Number(values.layers) } : {}) as Extract<ModelSpec, { type: 'llama' }>;
const newTokens = Number(values['new-tokens']);
const work = values.dir ?? join(tmpdir(), `smolcluster-generate-memory-${shape}${values.layers ? `-${values.layers}` : ''}`);
const root = packageRoot(import.meta.url);
const cli = join(root, 'dist', 'src', 'cli', 'main.js');

/** The folders (and the GGUF file, where Python can write it), written once. */
function prepare(): { bf16: string; f16: string; fp32: string; gguf: string | null; f16Gguf: string | null; ggufSkip?: string } {
  const folders = { bf16: join(work, 'bf16'), f16: join(work, 'f16'), fp32: join(work, 'fp32') };
  if (Object.values(folders).some((f) => !existsSync(join(f, 'config.json')))) {
    mkdirSync(work, { recursive: true });
    process.stderr.write(`writing ${shape}'s random weights to ${work} ...\n`);
    const model = createModel(spec, SEED);
    saveFolder(folders.bf16, model, spec, { dtype: 'bf16' });
    saveFolder(folders.f16, model, spec, { dtype: 'f16' });
    saveFolder(folders.fp32, model, spec);
  }
  const [gguf, f16Gguf] = [join(work, 'q8_0.gguf'), join(work, 'f16.gguf')];
  const python = findPythonWith('gguf');
  if (!python.found) return { ...folders, gguf: null, f16Gguf: null, ggufSkip: python.reason };
  for (const [out, dtype] of [[gguf, 'q8_0'], [f16Gguf, 'f16']]) {
    if (existsSync(out)) continue;
    const r = spawnSync(python.found.python, [join(root, 'bench', 'reference', 'hf_to_gguf.py'), folders.fp32, out, '--dtype', dtype], { encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) return { ...folders, gguf: null, f16Gguf: null, ggufSkip: (r.stderr || String(r.error)).trim().split('\n').slice(-1)[0] };
  }
  return { ...folders, gguf, f16Gguf };
}

/** The bytes of a source's tensors as its files hold them. */
async function fileWeightBytes(source: string): Promise<number> {
  return (await weightReport(source)).formats.reduce((n, f) => n + f.fileBytes, 0);
}

/** The bytes a float folder's weights take under `--quantize scheme` (info --model's figure). */
async function quantizedWeightBytes(source: string, scheme: string): Promise<number> {
  const held = (await weightReport(source)).schemes.find((s) => s.scheme === scheme);
  if (!held) throw new Error(`${source}: no --quantize ${scheme} bytes`);
  return held.heldBytes;
}

/** One `generate` under /usr/bin/time -v: its resident peak and the estimate line it printed. */
function measure(row: Row): { peak: number; estimate: string; seconds: number } {
  const args = [cli, 'generate', '--model', row.model, '--prompt', PROMPT, '--max-new-tokens', String(newTokens), '--temperature', '0',
    '--tokenizer', 'bytes', '--precision', row.precision, '--threads', values.threads!, ...(row.quantize ? ['--quantize', row.quantize] : [])];
  const started = performance.now();
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, ...args], { encoding: 'utf8', timeout: 900_000, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${row.name}: generate failed: ${(r.stderr || String(r.error)).trim().split('\n').slice(-3).join(' | ')}`);
  const kb = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  if (!kb) throw new Error(`${row.name}: /usr/bin/time printed no Maximum resident set size`);
  const estimate = /smolcluster: memory (.*)/.exec(r.stderr)?.[1] ?? '(none printed)';
  return { peak: Number(kb[1]) * 1024, estimate, seconds: (performance.now() - started) / 1000 };
}

/**
 * `serve` of the same model: started on a free port, one completion of the prompt asked (the same
 * prompt and new tokens as generate), then its VmHWM read from /proc before it is stopped.
 */
async function measureServe(row: Row): Promise<{ peak: number; estimate: string }> {
  const child = spawn(process.execPath, [cli, 'serve', '--model', row.model, '--port', '0', '--tokenizer', 'bytes', '--precision', row.precision, '--threads', values.threads!, '--max-batch', '1', '--model-name', 'bench'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /at (http:\/\/[^ /]+)\/v1/.exec(err);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`${row.name}: serve exited (${code}): ${err.trim().split('\n').slice(-2).join(' | ')}`)));
  });
  try {
    const r = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'bench', prompt: PROMPT, max_tokens: newTokens, temperature: 0 }) });
    if (!r.ok) throw new Error(`${row.name}: serve answered ${r.status}: ${await r.text()}`);
    await r.json();
    const peak = vmHwmBytes(child.pid!);
    if (peak === null) throw new Error(`${row.name}: no VmHWM for serve`);
    return { peak, estimate: /smolcluster: memory (.*)/.exec(err)?.[1] ?? '(none printed)' };
  } finally {
    child.kill('SIGINT');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

/** GPT-2 124M's random weights as an F32 folder, written once. */
function prepareGpt2(): { folder: string; spec: ModelSpec } {
  const g2 = gpt2Spec('gpt2', 50257, 1024);
  const folder = join(work, 'gpt2-fp32');
  if (!existsSync(join(folder, 'config.json'))) saveFolder(folder, createModel(g2, SEED), g2);
  return { folder, spec: g2 };
}

async function main(): Promise<void> {
  const files = prepare();
  const gpt2 = prepareGpt2();
  const rows: Row[] = [
    { name: 'bf16 folder, --precision bf16', model: files.bf16, precision: 'bf16', weightBytes: await fileWeightBytes(files.bf16), serve: true },
    { name: 'bf16 folder, --precision fp32', model: files.bf16, precision: 'fp32', weightBytes: await fileWeightBytes(files.bf16) },
    { name: 'f16 folder, --precision fp32', model: files.f16, precision: 'fp32', weightBytes: await fileWeightBytes(files.f16), serve: true },
    { name: 'fp32 folder, --precision fp32', model: files.fp32, precision: 'fp32', weightBytes: await fileWeightBytes(files.fp32), serve: true },
    { name: 'fp32 folder, --precision bf16', model: files.fp32, precision: 'bf16', weightBytes: await fileWeightBytes(files.fp32) },
    { name: 'bf16 folder, --quantize q8_0', model: files.bf16, precision: 'fp32', weightBytes: await quantizedWeightBytes(files.bf16, 'q8_0'), quantize: 'q8_0' },
    ...(files.gguf ? [{ name: 'q8_0 GGUF, --precision fp32', model: files.gguf, precision: 'fp32' as const, weightBytes: await fileWeightBytes(files.gguf) }] : []),
    ...(files.f16Gguf ? [{ name: 'f16 GGUF, --precision fp32', model: files.f16Gguf, precision: 'fp32' as const, weightBytes: await fileWeightBytes(files.f16Gguf) }] : []),
    { name: 'gpt2 124M fp32 folder, --precision fp32', model: gpt2.folder, precision: 'fp32', weightBytes: await fileWeightBytes(gpt2.folder), spec: gpt2.spec },
  ];
  const only = values.only?.split(',');
  const chosen = only ? rows.filter((r) => only.some((o) => r.name.includes(o))) : rows;
  if (files.ggufSkip) process.stderr.write(`no GGUF row: ${files.ggufSkip}\n`);
  // Positions: the prompt's bytes and the new tokens; the cache's capacity doubles from 16.
  const capacity = 2 ** Math.ceil(Math.log2(Math.max(16, Buffer.byteLength(PROMPT) + newTokens)));
  const results = [];
  for (const row of chosen) {
    const kv = kvBytes(row.spec ?? spec, capacity, 1, row.precision);
    const target = (row.weightBytes + kv) * 1.15 + RUNTIME;
    const m = measure(row);
    const verdict = m.peak <= target ? 'within' : 'OVER';
    process.stdout.write(`${row.name.padEnd(32)} peak ${(m.peak / MB).toFixed(0).padStart(6)} MB   target ${(target / MB).toFixed(0).padStart(6)} MB (weights ${(row.weightBytes / MB).toFixed(0)} + KV ${(kv / MB).toFixed(1)}, +15 %, +150)   ${verdict}   ${m.seconds.toFixed(1)} s\n`);
    process.stdout.write(`${''.padEnd(32)} estimate ${m.estimate}\n`);
    if (row.serve) {
      const sm = await measureServe(row);
      process.stdout.write(`${'  serve (VmHWM after a request)'.padEnd(32)} peak ${(sm.peak / MB).toFixed(0).padStart(6)} MB   target ${(target / MB).toFixed(0).padStart(6)} MB   ${sm.peak <= target ? 'within' : 'OVER'}\n`);
      results.push({ row: `${row.name}, serve`, peakBytes: sm.peak, targetBytes: Math.round(target), within: sm.peak <= target, estimate: sm.estimate });
    }
    results.push({ row: row.name, peakBytes: m.peak, targetBytes: Math.round(target), weightBytes: row.weightBytes, kvBytes: kv, within: m.peak <= target, estimate: m.estimate, seconds: m.seconds });
  }
  const size = (p: string): number => (statSync(p).isDirectory() ? 0 : statSync(p).size);
  process.stdout.write(`${JSON.stringify({ bench: 'generate-memory', shape, layers: spec.layers, newTokens, prompt: Buffer.byteLength(PROMPT), machine: machineInfo(), results, gguf: files.gguf ? size(files.gguf) : null, config: JSON.parse(readFileSync(join(files.bf16, 'config.json'), 'utf8')).torch_dtype })}\n`);
}

await main();
