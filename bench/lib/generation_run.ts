/**
 * What bench:generate's engines share: the run each child times, and the one JSON line it prints.
 *
 * A run is greedy generation of `newTokens` tokens after a prompt of `promptTokens` random ids (seeded),
 * for `batch` sequences of equal length, with a KV cache. It is timed in two parts on the wall clock:
 * prefill (from the call to the first new token, which the prompt's forward gives) and decode (the
 * remaining newTokens − 1 tokens, one forward each). bench/reference/generate_torch.py prints the
 * same fields.
 */
import { Rng } from '../../src/util/rng.js';
import { filledBuffer, readBandwidthOf } from './read_bandwidth.js';

export interface GenerationRun {
  batch: number;
  promptTokens: number;
  newTokens: number;
  /** Milliseconds from the start to every sequence's first new token. */
  prefillMs: number;
  /** Milliseconds from there to the last token of every sequence. */
  decodeMs: number;
  /** Process CPU time / wall time over the run (≈ 1 on an idle core with one thread). */
  cpuShare: number;
  /** Process CPU milliseconds (all threads) over the decode part: what a loaded machine's other processes do not inflate. */
  decodeCpuMs: number;
  /** The first sequence's generated ids (to compare engines: same weights, greedy). */
  firstIds: number[];
  /**
   * This core's read bandwidth, GB per CPU-second, read in the same process just before and just
   * after the run (the larger: besideRun): the bound of the same minutes, where the host's other
   * tenants change both alike. Batch-1 runs of our engines and llama.cpp's.
   */
  readGbPerCpuSec?: number;
}

export interface EngineReport {
  engine: 'smolcluster' | 'transformers' | 'llama.cpp';
  model: string;
  /** fp32 / bf16, or a GGUF file's quantized type (q8_0, q4_0, q4_k_m, q5_k_m). */
  dtype: string;
  detail: string;
  runs: GenerationRun[];
}

/**
 * The batch-1 generations, of WARM_UP_TOKENS each, that ours and llama.cpp (node-llama-cpp drives it
 * from JavaScript too) run before their timed runs. V8 optimises the decode loop's functions in
 * background threads over its first tokens, and what it compiles during a timed run counts in that
 * run's CPU time:
 *  - after a 4-token warm-up (as before 2026-11-28) that compiling ran through the timed decode —
 *    SmolLM2-135M's Q4_0 file, one thread, an Intel Xeon: 7.07-7.16 CPU-ms a token against
 *    6.57-6.75 after 64 tokens, wall time 6.0-6.2 either way (the worker run alone, alternated);
 *  - after one 64-token generation the next one's prompt still undid it: the fused decode block is
 *    optimised during the first generation's decode, never having met a prompt's tensors, whose
 *    shapes (arrays that optimised code built with `map`, holey) fail its map checks at the next
 *    prompt, and the block, the layer call and the functions they inline were compiled again during
 *    the timed run (`--trace-opt`: 90-104 ms of optimising over 127 tokens of ~6.2 ms; CPU 1.09-1.18x
 *    the wall time; the batch's warm-up, run between the first generation and the timed one,
 *    changed the path's type feedback again). With the batch warmed first and two generations
 *    after it, 8-10 ms of optimising is left, no deoptimisation, and the CPU is 1.05x the wall time
 *    (5.90-6.45 CPU-ms a token against 6.59-7.31; the worker run alone with batch 8 timed too);
 *  - the whole stack's step (fusedDecodeStack, 2026-11-29) was then first optimised at the timed
 *    run's start and deoptimised at once, its blocks' parts an array `map` had made in the other
 *    kind (23 ms of compiling; an AMD EPYC's CPU 1.06-1.07x the wall time over the timed decode); its
 *    arrays built by push, 1.02x (one run in six 1.05x), the 15-20 ms of compiling left in the
 *    timed run being small functions reaching TurboFan's thresholds one by one (six warm-up
 *    generations instead of two moved which, not how much).
 */
export const WARM_UP_TOKENS = 64;
export const WARM_UP_GENERATIONS = 2;

/** Prompt ids of every engine: `batch` rows of `length` ids below `vocab`, from one seed. */
export function promptIds(seed: number, batch: number, length: number, vocab: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: batch }, () => Array.from({ length }, () => rng.int(vocab)));
}

export const prefillPerSecond = (r: GenerationRun): number => (r.batch * r.promptTokens * 1000) / r.prefillMs;
export const decodePerSecond = (r: GenerationRun): number => (r.batch * (r.newTokens - 1) * 1000) / r.decodeMs;
/** Decode tokens per CPU-second of the process (equal to decodePerSecond on an idle core). */
export const decodePerCpuSecond = (r: GenerationRun): number => (r.batch * (r.newTokens - 1) * 1000) / r.decodeCpuMs;

/** Process CPU milliseconds (all threads). */
export function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** The buffer besideRun reads: 1 GiB, far past the last-level cache (made once a process, before its warm-up, so no GC of it falls in a timed run). */
let besideBuffer: Buffer | null = null;

/** Makes the buffer besideRun reads, before the runs it will time. */
export function prepareBesideRun(): void {
  besideBuffer ??= filledBuffer(2 ** 30);
}

/**
 * `run`, with this core's read bandwidth read just before and after it (memchr over besideBuffer,
 * three passes each): on a shared host the bandwidth moves from minute to minute, and bench:generate
 * once read it only at its start (SmolLM2's Q8_0 row 78 % of the bound in one run and 58 % in the
 * next, the bandwidth read 28.1 and 30.6 GB/s).
 */
export async function besideRun(run: () => Promise<GenerationRun>): Promise<GenerationRun> {
  prepareBesideRun();
  const before = readBandwidthOf(besideBuffer!, 3).gbPerCpuSec;
  const r = await run();
  const after = readBandwidthOf(besideBuffer!, 3).gbPerCpuSec;
  return { ...r, readGbPerCpuSec: Math.max(before, after) };
}
