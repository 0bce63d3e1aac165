import type { CpuSource } from '../../src/balance/cpu_source.js';

/** A fake OS for the balancer's capacity meter (src/balance/capacity.ts): the test advances the clock and the thread's times by hand. */
export class FakeCpu implements CpuSource {
  now = 0;
  run = 0;
  queued = 0;
  quota: number | null = null;
  schedstat = true;
  extraCpu = 0;

  /** `wallMs` pass in which the thread wanted a CPU for `busyMs` and got `granted` of it. */
  pass(wallMs: number, busyMs: number, granted: number): void {
    this.now += wallMs;
    this.run += busyMs * granted;
    this.queued += busyMs * (1 - granted);
  }

  nowMs(): number {
    return this.now;
  }

  times(): { runMs: number; queuedMs: number } | null {
    return this.schedstat ? { runMs: this.run, queuedMs: this.queued } : null;
  }

  quotaCpus(): number | null {
    return this.quota;
  }

  /** The process's CPU time: the thread's, and `extraCpu` (other threads). */
  processCpuMs(): number {
    return this.run + this.extraCpu;
  }
}
