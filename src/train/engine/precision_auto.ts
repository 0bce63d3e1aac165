/**
 * `--precision auto` (docs/PRECISION.md): bf16 where the CPU has bf16 matrix or dot-product
 * instructions AND a short start-up measurement finds bf16 faster on this process's engine, else
 * fp32. The instructions alone are not enough: an engine without bf16 kernels for them (the js
 * backend, an older oneDNN) would only pay for the rounding.
 *
 *   native addon   its CPU feature table (src/native/cpu_features.h), under any SMOLCLUSTER_CPU cap:
 *                  amxBf16 → amx_bf16, avx512bf16 → avx512_bf16, arm64 bf16 → bf16
 *   else:
 *   Linux x86-64   /proc/cpuinfo `flags`: amx_bf16 (AMX tiles), avx512_bf16 (VDPBF16PS)
 *   Linux arm64    /proc/cpuinfo `Features`: bf16 (BFDOT, BFMMLA)
 *   macOS arm64    `sysctl -n hw.optional.arm.FEAT_BF16` = 1 (Apple M2 and later)
 *   anything else  none found
 *
 * The measurement: one training step of a linear layer of GPT-2's width, [256, 768] × [768, 768]ᵀ,
 * forward and backward (gx, gW, gb: three GEMMs, 906 MFLOP, ≈ 4.4 ms in fp32 and 2.5 ms in bf16 on
 * one core of the development machine), as a model's step runs it: the bf16 roundings of x, W and
 * gy included. A forward alone at a smaller size (the first probe, 256×512×512) was dominated by
 * the roundings and by noise and chose fp32 where whole models ran 1.2–1.6× faster in bf16. Timed
 * under each precision alternately after a warm-up of each, until BUDGET_MS are spent (best-of
 * filters the rounds another process interrupted); the best of each counts, and bf16 must be at
 * least MIN_SPEEDUP faster.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { backward } from '../../tensor/autograd.js';
import { type CpuTable, nativeCpuTable } from '../../tensor/backends/native.js';
import { backend } from '../../tensor/dispatch.js';
import { supportsPrecision } from '../../tensor/precision_support.js';
import { linear } from '../../tensor/ops/matmul.js';
import { type Precision, withComputePrecision } from '../../tensor/precision.js';
import { CPU, type Device } from '../../tensor/storage.js';
import { Tensor } from '../../tensor/tensor.js';

/** bf16 must beat fp32 by this factor (best-of timings still vary by a few %). */
export const MIN_SPEEDUP = 1.1;
const MAX_ROUNDS = 20;
/**
 * The alternated rounds go on until this much time is spent after the warm-up (at least one round):
 * 7–11 rounds natively here; one on the js backend, whose probe takes ≈ 260 ms in each precision.
 */
const BUDGET_MS = 50;
const PROBE = { M: 256, K: 768, N: 768 };

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
  /** Best time of the probe in each precision (null: not measured, no instructions). */
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

/** The bf16 instructions a native CPU table allows, named as /proc/cpuinfo names them. */
export function bf16InCpuTable(cpu: CpuTable): string[] {
  const named: Array<[string, string]> = [['amxBf16', 'amx_bf16'], ['avx512bf16', 'avx512_bf16'], ['bf16', 'bf16']];
  return named.filter(([key]) => cpu.features[key] === true).map(([, name]) => name);
}

/**
 * The bf16 instructions this process may use: the native addon's table when it is loaded (the
 * kernels dispatch on it, and SMOLCLUSTER_CPU lowers it), else what the OS reports (`cpu`, `read`
 * and `sysctl` are injectable for tests; `cpu: null` skips the table).
 */
export function detectBf16Instructions(o: { cpu?: CpuTable | null; platform?: NodeJS.Platform; arch?: string; read?: (file: string) => string; sysctl?: (name: string) => string } = {}): Bf16Instructions {
  const cpu = o.cpu === undefined ? nativeCpuTable() : o.cpu;
  if (cpu) return { found: bf16InCpuTable(cpu), source: `native CPU table, level ${cpu.level}` };
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
  /** The compute threads it ran with (the run's: the ratio depends on them). */
  threads?: number;
}

/**
 * The decision from what was found and the probe's time in each precision (`time` is called only
 * when there are instructions; injectable for tests).
 */
export function decideAutoPrecision(instructions: Bf16Instructions, time: () => ProbeTimes): AutoPrecision {
  if (instructions.found.length === 0) {
    return { precision: 'fp32', instructions: [], fp32Ms: null, bf16Ms: null, reason: `no bf16 instructions (${instructions.source})` };
  }
  const { fp32Ms, bf16Ms, threads } = time();
  const has = `${instructions.found.join(', ')} (${instructions.source})`;
  const on = threads === undefined ? '' : `, ${threads} thread${threads === 1 ? '' : 's'}`;
  const timed = `${PROBE.M}×${PROBE.K}×${PROBE.N} linear forward+backward${on}: bf16 ${bf16Ms.toFixed(2)} ms, fp32 ${fp32Ms.toFixed(2)} ms`;
  if (bf16Ms * MIN_SPEEDUP <= fp32Ms) {
    return { precision: 'bf16', instructions: instructions.found, fp32Ms, bf16Ms, reason: `${has}; ${timed}: bf16 ${(fp32Ms / bf16Ms).toFixed(2)}× faster` };
  }
  return { precision: 'fp32', instructions: instructions.found, fp32Ms, bf16Ms, reason: `${has}, but ${timed}: bf16 not ${MIN_SPEEDUP}× faster on this engine` };
}

/**
 * The probe's time in each precision: both warmed up (primitives created, caches and clocks up),
 * then alternated (neither gains from going second) until `budgetMs` are spent, at least once;
 * the best of each.
 */
export function timeProbe(budgetMs = BUDGET_MS): ProbeTimes {
  // Values in [-0.5, 0.5) from a cheap hash, in a plain loop: Float32Array.from with a map
  // function over these million elements costs ≈ 100 ms, Math.sin more.
  const fill = (n: number, seed: number): Float32Array => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (((i + seed) * 40503) & 4095) / 4096 - 0.5;
    return a;
  };
  const x = Tensor.fromHost(fill(PROBE.M * PROBE.K, 1), [PROBE.M, PROBE.K], true);
  const w = Tensor.fromHost(fill(PROBE.N * PROBE.K, 2), [PROBE.N, PROBE.K], true);
  const b = Tensor.fromHost(fill(PROBE.N, 3), [PROBE.N], true);
  const gy = fill(PROBE.M * PROBE.N, 4);
  const once = (p: Precision): number => withComputePrecision(p, () => {
    // As after Module.zeroGrad(): the gradients are written, not added to (β = 0).
    for (const t of [x, w, b]) t.markGradZeroed();
    const t0 = performance.now();
    backward(linear(x, w, b), gy);
    x.gradValues();
    return performance.now() - t0;
  });
  once('fp32');
  once('bf16');
  const best = { fp32Ms: Infinity, bf16Ms: Infinity, threads: backend().getThreads() };
  const start = performance.now();
  for (let r = 0; r < MAX_ROUNDS && (r === 0 || performance.now() - start < budgetMs); r++) {
    best.fp32Ms = Math.min(best.fp32Ms, once('fp32'));
    best.bf16Ms = Math.min(best.bf16Ms, once('bf16'));
  }
  return best;
}

/** auto's choice for a device that cannot compute in bf16: fp32, without measuring. */
export function fp32Only(device: Device, who = `the ${device} device`): AutoPrecision {
  return { precision: 'fp32', instructions: [], fp32Ms: null, bf16Ms: null, reason: `${who} computes in fp32 only` };
}

const decided = new Map<string, AutoPrecision>();

/**
 * auto's choice on this machine for the device the process trains on (default the cpu): on a
 * device without bf16, fp32; on the cpu, detected and measured on the current engine, once per
 * process and engine.
 */
export function resolveAutoPrecision(device: Device = CPU): AutoPrecision {
  if (!supportsPrecision(device, 'bf16')) return fp32Only(device);
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
