/**
 * One deadline for a whole collective instead of one timer per message: a ring all-reduce posts
 * 2 (n-1) receives and as many sends per lane, and arming and clearing a Node timer for each cost more
 * than the small messages themselves. The collective creates a Deadline, every send and receive it
 * posts registers here (a Set insert), and one timer fails whatever is still waiting when it fires,
 * naming every rank still owed — the late ones.
 */
import { TimeoutError } from '../util/errors.js';

/** A send or receive waiting under a deadline; `expire` fails it (called at most once). */
export interface Waiter {
  readonly peer: number;
  expire(err: TimeoutError): void;
}

export class Deadline {
  private timer: NodeJS.Timeout | null = null;
  private readonly waiting = new Set<Waiter>();
  private finished = false;

  constructor(
    readonly op: string,
    readonly timeoutMs: number,
  ) {}

  /** Registers a wait; the timer is armed by the first one. */
  track(w: Waiter): void {
    this.waiting.add(w);
    this.timer ??= setTimeout(() => this.fire(), this.timeoutMs);
  }

  /** The wait completed (or failed otherwise). */
  untrack(w: Waiter): void {
    this.waiting.delete(w);
    if (this.finished && this.waiting.size === 0) this.disarm();
  }

  /**
   * The collective is over. Its timer goes once nothing waits; a failed collective may leave receives
   * posted for messages that never come, and the timer still fails those at the deadline.
   */
  finish(): void {
    this.finished = true;
    if (this.waiting.size === 0) this.disarm();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private fire(): void {
    this.timer = null;
    const late = [...this.waiting];
    this.waiting.clear();
    if (late.length === 0) return;
    const err = new TimeoutError(this.op, [...new Set(late.map((w) => w.peer))].sort((a, b) => a - b), this.timeoutMs);
    for (const w of late) w.expire(err);
  }
}
