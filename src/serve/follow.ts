/**
 * `serve --follow experiments/RUN`: looks at the run's folder every few seconds and, when its newest
 * weights (checkpoint or saved model) are not the ones served, loads them and hands them over. A
 * look that fails (a checkpoint half-written, the folder briefly without one) is reported and the
 * served model kept; the next look tries again.
 */
import { resolveModelSource } from '../generate/model_source.js';

/** Which weights a run's folder names now: their path and step (a saved model is rewritten at the same path with a new step). */
export function weightsKey(run: string): string {
  const r = resolveModelSource(run);
  return `${r.path}@${r.run?.step ?? 0}`;
}

export interface Follower {
  stop(): void;
}

/**
 * Polls `run` every `everyMs`: when its newest weights differ from `served` (a weightsKey), calls
 * `reload()` (which loads and swaps them, returning the path loaded) and then `onReloaded(path)`;
 * failures go to `onError`.
 */
export function followRun(run: string, served: string, everyMs: number, reload: () => Promise<string>, hooks: { onReloaded(path: string): void; onError(e: unknown): void }): Follower {
  let current = served;
  let busy = false;
  const look = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      const now = weightsKey(run);
      if (now === current) return;
      hooks.onReloaded(await reload());
      current = now;
    } catch (e) {
      hooks.onError(e);
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void look(), everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
