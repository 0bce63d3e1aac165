import { resolve } from 'node:path';

/**
 * Taps on the run's JSON-lines files: a function that sees every line written to a file, whoever
 * writes it (the step metrics, the run's events, the monitors, the balancer's decisions). The
 * metric stream to rank 0 (remote/sender.ts) taps metrics.jsonl and events.jsonl this way, so no
 * writer needs to know that its lines also travel. A tap must be cheap and must not throw.
 */
export type LineTap = (line: string) => void;

const taps = new Map<string, LineTap>();

/** Sends every line written to `file` to `tap` until the returned function is called. */
export function tapFile(file: string, tap: LineTap): () => void {
  const key = resolve(file);
  taps.set(key, tap);
  return () => {
    if (taps.get(key) === tap) taps.delete(key);
  };
}

/** The tap on `file`, if any (`file` already resolved). */
export function tapOf(resolvedFile: string): LineTap | undefined {
  return taps.size === 0 ? undefined : taps.get(resolvedFile);
}
