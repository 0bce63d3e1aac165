import type { CpuSource, CpuTimes } from './cpu_source.js';

/**
 * The CPU capacity a rank really has: the share of one CPU it gets when it wants one, over
 * windows of wall time, smoothed, and planned with hysteresis.
 *
 * `granted` = time on a CPU ÷ (that + time runnable but waiting), from cpu_source.ts. Per step
 * (step) it turns the step's wall times into its CPU work: a step that fell into a throttled
 * part of a quota period, or met a neighbour's burst, looks 3× slower by the wall clock and costs
 * the same work. Per window (read: the steps between two decisions) it measures the capacity;
 * the balancer divides the work by it (× `factor`), so the policy sees what the work costs at the
 * capacity the rank can count on, whatever happened in the window.
 *
 * - A cgroup quota is a hard ceiling, read from its files (a rank under its quota never shows it:
 *   its steps look full speed until a larger share makes it stall for the rest of each period).
 *   It is planned at HEADROOM of itself: the cost of exceeding it is a stall of most of a period.
 * - Anything else (a neighbour's program on the core) is measured: `granted` smoothed over time
 *   (an exponential average, its weight halving every `halfLifeMs` of wall time) so one bursty
 *   window does not count as a slower node, then held (hysteresis): the capacity planned with
 *   changes only when the smoothed figure moves more than BAND away from it. Outside load that
 *   comes and goes moves the shares little; load that stays is followed.
 */
export interface CapacityReading {
  /** Of the time this rank wanted a CPU in the window, the fraction it ran (NaN: not measured). */
  granted: number;
  /** `granted` averaged over time (NaN before the first measured window). */
  smoothed: number;
  /** CPUs its cgroup quota allows (null: none). */
  quota: number | null;
  /** The capacity planned with (≤ 1; 1 where nothing is known). */
  capacity: number;
  /** Work (CPU ms) × this = ms at `capacity`: 1 / capacity. */
  factor: number;
}

export interface CapacityOptions {
  /** The smoothing's half-life in wall ms (default 4,000). */
  halfLifeMs?: number;
}

/** A quota is planned at this fraction of itself. */
export const HEADROOM = 0.9;
/** The planned capacity follows the smoothed one when they differ by more than this fraction. */
export const BAND = 0.1;
/** A window in which the rank wanted a CPU for less than this (ms) measures nothing. */
const MIN_DEMAND_MS = 2;

export class CapacityMeter {
  private last: (CpuTimes & { at: number }) | null = null;
  private lastStep: CpuTimes | null = null;
  private lastCpuMs = NaN;
  private smoothed = NaN;
  private held = NaN;
  private readonly halfLifeMs: number;

  constructor(private readonly source: CpuSource, o: CapacityOptions = {}) {
    this.halfLifeMs = o.halfLifeMs ?? 4_000;
  }

  /** Starts the first window (before it: nothing measured). */
  start(): void {
    const t = this.source.times();
    this.last = t ? { ...t, at: this.source.nowMs() } : null;
    this.lastStep = t;
    this.lastCpuMs = this.source.processCpuMs();
  }

  /**
   * Once per step, since the previous call (or start): `granted`, of the time the rank wanted a
   * CPU the fraction it ran (1 where unknown), and `cpuMs`, the CPU time the process used.
   */
  step(): { granted: number; cpuMs: number } {
    const t = this.source.times();
    const prev = this.lastStep;
    const cpu = this.source.processCpuMs();
    const cpuMs = cpu - this.lastCpuMs;
    this.lastStep = t;
    this.lastCpuMs = cpu;
    if (!t || !prev) return { granted: 1, cpuMs };
    const run = t.runMs - prev.runMs;
    const queued = t.queuedMs - prev.queuedMs;
    return { granted: run >= 0 && queued >= 0 && run + queued > 0 ? run / (run + queued) : 1, cpuMs };
  }

  /** Ends the window begun at the previous call (or start()) and begins the next. */
  read(): CapacityReading {
    const granted = this.grantedSinceLast();
    const quota = this.source.quotaCpus();
    if (Number.isFinite(granted.fraction)) this.smooth(granted.fraction, granted.wallMs);
    const measured = Number.isFinite(this.held) ? this.held : 1;
    const capacity = Math.min(1, measured, quota === null ? 1 : quota * HEADROOM);
    const factor = 1 / capacity;
    return { granted: granted.fraction, smoothed: this.smoothed, quota, capacity, factor };
  }

  private grantedSinceLast(): { fraction: number; wallMs: number } {
    const t = this.source.times();
    const now = this.source.nowMs();
    const prev = this.last;
    this.last = t ? { ...t, at: now } : null;
    if (!t || !prev) return { fraction: NaN, wallMs: 0 };
    const run = t.runMs - prev.runMs;
    const queued = t.queuedMs - prev.queuedMs;
    if (!(run + queued >= MIN_DEMAND_MS) || run < 0 || queued < 0) return { fraction: NaN, wallMs: now - prev.at };
    return { fraction: run / (run + queued), wallMs: now - prev.at };
  }

  private smooth(fraction: number, wallMs: number): void {
    if (!Number.isFinite(this.smoothed)) this.smoothed = fraction;
    else this.smoothed += (fraction - this.smoothed) * (1 - 0.5 ** (Math.max(0, wallMs) / this.halfLifeMs));
    if (!Number.isFinite(this.held) || Math.abs(this.smoothed - this.held) > BAND * this.held) this.held = this.smoothed;
  }
}
