/**
 * Whether more than one compute thread pays on this machine, now: a one-time calibration (per
 * process) for the default thread count.
 *
 * The native kernels fork only above measured sizes (src/native/threads.h), so on an idle machine a
 * second thread is never slower. What the thresholds cannot see is a machine whose cores are already
 * busy: there a forked kernel waits at its barrier for a thread the scheduler has not run, and 2
 * threads ran at 0.1–0.7× of 1 (docs/BENCHMARKS.md, bench:threads). So before choosing more than one
 * thread by default we time a probe that does fork — a GEMM [512,784]@[784,128] (103 MFLOP) and an
 * add of 1.25M floats, both above their fork thresholds — alternately at 1 thread and at `max`, and keep
 * `max` only if it is at least `MIN_SPEEDUP` faster (median of the rounds). It costs ≈ 50 ms on an idle machine, 100–250 ms on a busy one.
 */
import { median } from '../../util/stats.js';
import type { Backend } from '../../tensor/backend.js';
import { deviceMemory, type DeviceBuffer } from '../../tensor/storage.js';

/** A second thread must win by this much to be chosen (the probe's rounds vary by a few %). */
export const MIN_SPEEDUP = 1.1;
const ROUNDS = 5;
const GEMM = { M: 512, K: 784, N: 128 };
const ADD_FLOATS = 1_250_000; // over the 1,048,576 at which elementwise kernels fork

export interface ThreadCalibration {
  threads: number;
  /** Median probe time at 1 thread over at `max` threads (NaN when nothing was timed). */
  speedup: number;
  /** Wall time the calibration took. */
  ms: number;
}

/** The decision from the probe's times: `max` threads only when its median beats 1 thread's by MIN_SPEEDUP. */
export function pickThreads(oneMs: readonly number[], maxMs: readonly number[], max: number): { threads: number; speedup: number } {
  const speedup = median(oneMs) / median(maxMs);
  return { threads: max > 1 && speedup >= MIN_SPEEDUP ? max : 1, speedup };
}

/** Times the probe on `k` at 1 and `max` threads and returns the pick; leaves `k` at its previous thread count. */
export function calibrateThreads(k: Backend, max: number): ThreadCalibration {
  const t0 = performance.now();
  if (max <= 1 || !k.multithreaded) return { threads: Math.max(1, Math.min(max, k.getThreads())), speedup: NaN, ms: 0 };
  const before = k.getThreads();
  const a = filled(k, GEMM.M * GEMM.K);
  const b = filled(k, GEMM.K * GEMM.N);
  const c = deviceMemory(k.device).alloc('float32', GEMM.M * GEMM.N).buffer;
  const x = filled(k, ADD_FLOATS);
  const y = filled(k, ADD_FLOATS);
  const z = deviceMemory(k.device).alloc('float32', ADD_FLOATS).buffer;
  const probe = (threads: number): number => {
    k.setThreads(threads);
    const s = performance.now();
    k.gemm(false, false, GEMM.M, GEMM.N, GEMM.K, 1, a, 0, b, 0, 0, c, 0, 1);
    k.binary('add', x, [1], y, [1], z, [ADD_FLOATS]);
    return performance.now() - s;
  };
  probe(1);
  probe(max); // warm-up: the first fork starts the team
  const one: number[] = [];
  const many: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    one.push(probe(1));
    many.push(probe(max));
  }
  k.setThreads(before);
  return { ...pickThreads(one, many, max), ms: performance.now() - t0 };
}

function filled(k: Backend, n: number): DeviceBuffer {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = ((i * 7919) % 1000) / 1000 - 0.5;
  const s = deviceMemory(k.device).alloc('float32', n);
  s.write(a);
  return s.buffer;
}

const cache = new Map<string, ThreadCalibration>();

/** calibrateThreads once per backend and `max` in this process. */
export function calibratedThreads(k: Backend, max: number): ThreadCalibration {
  const key = `${k.name}:${max}`;
  let c = cache.get(key);
  if (!c) cache.set(key, (c = calibrateThreads(k, max)));
  return c;
}
