/**
 * `--precision auto` (docs/PRECISION.md): bf16 where the CPU has bf16 matrix or dot-product
 * instructions AND a short start-up measurement finds bf16 faster on this process's engine, else
 * fp32. The instructions alone are not enough: an engine without bf16 kernels for them (the js
 * backend, an older oneDNN) would only pay for the rounding.
 *
 *   Linux x86-64   /proc/cpuinfo `flags`: amx_bf16 (AMX tiles), avx512_bf16 (VDPBF16PS)
 *   Linux arm64    /proc/cpuinfo `Features`: bf16 (BFDOT, BFMMLA)
 *   macOS arm64    `sysctl -n hw.optional.arm.FEAT_BF16` = 1 (Apple M2 and later)
 *   anything else  none found
 *
 * The measurement: a linear layer of a transformer's size, [256, 512] × [512, 512]ᵀ (134 MFLOP,
 * ≈ 1 ms in fp32 on one core of the development machine), timed under each precision alternately,
 * best of ROUNDS after a warm-up of each; bf16 must be at least MIN_SPEEDUP faster.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { noGrad } from './autograd.js';
import { backend } from './dispatch.js';
import { linear } from './ops/matmul.js';
import { type Precision, withComputePrecision } from './precision.js';
import { Tensor } from './tensor.js';

/** bf16 must beat fp32 by this factor (best-of timings still vary by a few %). */
export const MIN_SPEEDUP = 1.1;
const ROUNDS = 5;
const PROBE = { M: 256, K: 512, N: 512 };

/** The x86 cpuinfo flags that mean bf16 matrix or dot-product instructions. */
const X86_BF16_FLAGS = ['amx_bf16', 'avx512_bf16'] as const;

export interface Bf16Instructions {
  /** What was found, e.g. ['amx_bf16', 'avx512_bf16']; empty: none. */
  found: string[];
  /** Where it was looked for: '/proc/cpuinfo', 'sysctl hw.optional.arm.FEAT_BF16', or why nowhere. */
  source: string;
}

/** Why auto chose what it chose: written to result.json (`precision_auto`) and config.json. */
export interface AutoPrecision {
  precision: Precision;
  instructions: string[];
  /** Best-of-ROUNDS time of the probe in each precision (null: not measured, no instructions). */
  fp32Ms: number | null;
  bf16Ms: number | null;
  reason: string;
}

/** The bf16 instructions a /proc/cpuinfo text lists (x86 `flags` lines, arm64 `Features` lines). */
export function bf16InCpuinfo(text: string): string[] {
  const found = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^(flags|Features)\s*:\s*(.*)$/.exec(line.trim());
    if (!m) continue;
    const words = new Set(m[2].split(/\s+/));
    if (m[1] === 'flags') for (const f of X86_BF16_FLAGS) if (words.has(f)) found.add(f);
    if (m[1] === 'Features' && words.has('bf16')) found.add('bf16');
  }
  // In a fixed order, whatever the order of the cores' lines.
  return [...X86_BF16_FLAGS, 'bf16'].filter((f) => found.has(f));
}

/** `sysctl -n hw.optional.arm.FEAT_BF16`'s output: "1" when the CPU has FEAT_BF16. */
export function bf16InSysctl(output: string): boolean {
  return output.trim() === '1';
}

/** The bf16 instructions of this CPU (`read` and `sysctl` are injectable for tests). */
export function detectBf16Instructions(o: { platform?: NodeJS.Platform; arch?: string; read?: (file: string) => string; sysctl?: (name: string) => string } = {}): Bf16Instructions {
  const platform = o.platform ?? process.platform;
  const arch = o.arch ?? process.arch;
  if (platform === 'linux') {
    const read = o.read ?? ((f: string) => readFileSync(f, 'utf8'));
    try {
      return { found: bf16InCpuinfo(read('/proc/cpuinfo')), source: '/proc/cpuinfo' };
    } catch (err) {
      return { found: [], source: `/proc/cpuinfo unreadable (${(err as Error).message})` };
    }
  }
  if (platform === 'darwin' && arch === 'arm64') {
    const sysctl = o.sysctl ?? ((name: string) => execFileSync('sysctl', ['-n', name], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] }));
    const name = 'hw.optional.arm.FEAT_BF16';
    try {
      return { found: bf16InSysctl(sysctl(name)) ? ['FEAT_BF16'] : [], source: `sysctl ${name}` };
    } catch {
      // Older macOS releases do not know the name: no FEAT_BF16 they would report.
      return { found: [], source: `sysctl ${name} unknown` };
    }
  }
  return { found: [], source: `no bf16 detection on ${platform} ${arch}` };
}

/** The probe's best time in each precision, in ms. */
export interface ProbeTimes {
  fp32Ms: number;
  bf16Ms: number;
}

/**
 * The decision from what was found and the probe's time in each precision (`time` is called only
 * when there are instructions; injectable for tests).
 */
export function decideAutoPrecision(instructions: Bf16Instructions, time: () => ProbeTimes): AutoPrecision {
  if (instructions.found.length === 0) {
    return { precision: 'fp32', instructions: [], fp32Ms: null, bf16Ms: null, reason: `no bf16 instructions (${instructions.source})` };
  }
  const { fp32Ms, bf16Ms } = time();
  const has = `${instructions.found.join(', ')} (${instructions.source})`;
  const timed = `${PROBE.M}×${PROBE.K}×${PROBE.N} linear: bf16 ${bf16Ms.toFixed(2)} ms, fp32 ${fp32Ms.toFixed(2)} ms`;
  if (bf16Ms * MIN_SPEEDUP <= fp32Ms) {
    return { precision: 'bf16', instructions: instructions.found, fp32Ms, bf16Ms, reason: `${has}; ${timed}: bf16 ${(fp32Ms / bf16Ms).toFixed(2)}× faster` };
  }
  return { precision: 'fp32', instructions: instructions.found, fp32Ms, bf16Ms, reason: `${has}, but ${timed}: bf16 not ${MIN_SPEEDUP}× faster on this engine` };
}

/** The probe's time in each precision: both warmed up, then alternated ROUNDS times (neither gains from going second), best of each. */
export function timeProbe(rounds = ROUNDS): ProbeTimes {
  const fill = (n: number, seed: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(seed + i) * 0.5);
  const x = Tensor.fromHost(fill(PROBE.M * PROBE.K, 1), [PROBE.M, PROBE.K]);
  const w = Tensor.fromHost(fill(PROBE.N * PROBE.K, 2), [PROBE.N, PROBE.K]);
  const b = Tensor.fromHost(fill(PROBE.N, 3), [PROBE.N]);
  const once = (p: Precision): number => noGrad(() => withComputePrecision(p, () => {
    const t0 = performance.now();
    linear(x, w, b).values();
    return performance.now() - t0;
  }));
  once('fp32'); // warm-up: primitives created, weights reordered, caches and clocks up
  once('bf16');
  const best = { fp32Ms: Infinity, bf16Ms: Infinity };
  for (let r = 0; r < rounds; r++) {
    best.fp32Ms = Math.min(best.fp32Ms, once('fp32'));
    best.bf16Ms = Math.min(best.bf16Ms, once('bf16'));
  }
  return best;
}

const decided = new Map<string, AutoPrecision>();

/** auto's choice on this machine and the current engine: detected and measured once per process and engine. */
export function resolveAutoPrecision(): AutoPrecision {
  const engine = backend().description;
  let choice = decided.get(engine);
  if (!choice) {
    choice = decideAutoPrecision(detectBf16Instructions(), () => timeProbe());
    decided.set(engine, choice);
  }
  return choice;
}

/** The line printed once where auto decides. */
export function describeAutoPrecision(a: AutoPrecision): string {
  return `precision auto: ${a.precision} (${a.reason})`;
}
