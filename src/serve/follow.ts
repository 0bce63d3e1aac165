/**
 * `serve --follow experiments/RUN`: looks at the run's folder every few seconds and, when its newest
 * weights (checkpoint or saved model) are not the ones served, loads them and hands them over. A
 * look that fails (a checkpoint half-written, the folder briefly without one) is reported and the
 * served model kept; the next look tries again.
 */
import { resolveModelSource } from '../generate/model_source.js';

export interface Follower {
  stop(): void;
}

/**
 * Polls `run` every `everyMs`: when its newest weights differ from `served` (a path), calls
 * `reload()` (which loads and swaps them) and then `onReloaded(path)`; failures go to `onError`.
 */
export function followRun(run: string, served: string, everyMs: number, reload: () => Promise<string>, hooks: { onReloaded(path: string): void; onError(e: unknown): void }): Follower {
  let current = served;
  let busy = false;
  const look = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      if (resolveModelSource(run).path === current) return;
      current = await reload();
      hooks.onReloaded(current);
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
