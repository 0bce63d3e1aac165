/** Retry timing for a task that was rejected or lost: capped exponential backoff and a retry limit. */
export interface RetryPolicy {
  /** Delay before the first retry (ms); each further retry doubles it. */
  baseMs: number;
  /** No retry waits longer than this (ms). */
  capMs: number;
  /** Attempts per task (the first included) before the job fails. */
  maxAttempts: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 10, capMs: 1000, maxAttempts: 50 };

/** The wait before attempt number `attempt` (2 = the first retry). */
export function retryDelayMs(attempt: number, p: RetryPolicy): number {
  if (attempt <= 1) return 0;
  return Math.min(p.capMs, p.baseMs * 2 ** Math.min(attempt - 2, 30));
}
