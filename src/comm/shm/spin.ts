/**
 * How long the shared-memory pump spins on its doorbell before it sleeps there, adapted to how its
 * waits turn out. A sleeping waiter costs the writer a wake system call and itself a wake-up that took
 * 23–38 µs on the 2-core VM (docs/ALGORITHMS.md) — more than a whole 4 KiB exchange between two busy
 * ranks — while a spin that the message ends costs neither. The spin offers its core between looks
 * (sched_yield, src/native/shm.cc), so a peer waiting for this core runs; but when something else
 * holds the core, one offer can cost a whole time slice (≈ 4 ms here). So:
 *
 * - a wait that slept but was over within maxUs would have been caught by a longer spin: the budget
 *   doubles (from FIRST_SPIN_US, up to maxUs), the rule of KVM's halt polling;
 * - a wait longer than maxUs shows spinning does not pay now (the peer computes, or the machine is
 *   busy): the budget drops to 0, and if this wait spun, no spinning for a cool-down that doubles
 *   while this repeats (COOL_DOWN_MS up to MAX_COOL_DOWN_MS), so a busy machine pays at most one slow
 *   spin per cool-down;
 * - a spin that caught its message resets the cool-down.
 */

/** The longest spin (µs): waits longer than this are slept through. */
export const MAX_SPIN_US = 200;
/** The first budget after none. */
export const FIRST_SPIN_US = 10;
/** The first cool-down after a wait longer than the longest spin (ms). */
export const COOL_DOWN_MS = 10;
export const MAX_COOL_DOWN_MS = 1000;

export class SpinBudget {
  private budget = 0;
  private coolDownMs = COOL_DOWN_MS;
  /** No spinning before this time (ms, the caller's clock). */
  private quietUntil = 0;

  constructor(readonly maxUs = MAX_SPIN_US) {
    if (!(maxUs >= 0)) throw new RangeError(`spin budget must be >= 0 µs, got ${maxUs}`);
  }

  /** Microseconds to spin before the next sleep, at time `nowMs` (0: sleep at once). */
  at(nowMs: number): number {
    return nowMs < this.quietUntil ? 0 : this.budget;
  }

  /**
   * A wait ended at `nowMs` after `waitedUs`, of which it spun up to `spunUs` (its budget) first;
   * `caught`: the spin saw the doorbell move.
   */
  record(nowMs: number, waitedUs: number, spunUs: number, caught: boolean): void {
    if (waitedUs > this.maxUs) {
      this.budget = 0;
      if (spunUs > 0) {
        this.quietUntil = nowMs + this.coolDownMs;
        this.coolDownMs = Math.min(MAX_COOL_DOWN_MS, this.coolDownMs * 2);
      }
    } else if (caught) this.coolDownMs = COOL_DOWN_MS;
    else this.budget = Math.min(this.maxUs, Math.max(FIRST_SPIN_US, this.budget * 2));
  }
}
