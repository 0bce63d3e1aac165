/**
 * `serve --follow experiments/RUN`: looks at the run's folder every few seconds and, when its newest
 * weights (checkpoint or saved model) are not the ones served, loads them and hands them over. A
 * look that fails (a checkpoint half-written, the folder briefly without one) is reported and the
 * served model kept; the next look tries again. Started before the run has weights (or before the
 * run has begun), it waits for the first.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NoWeightsYetError, adapterPath, resolveModelSource } from '../generate/model_source.js';
import { ADAPTER_CONFIG } from '../nn/lora/peft.js';

/** Which weights a run's folder names now: their path (a LoRA run's: its adapters') and step (a saved model is rewritten at the same path with a new step). */
export function weightsKey(run: string): string {
  const r = resolveModelSource(run);
  return `${r.adapter ? adapterPath(r.adapter) : r.path}@${r.run?.step ?? 0}`;
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

/**
 * Looks at `run` every `everyMs` until it holds weights (resolves true) or `stopped` settles first
 * (false). While it has none yet (a run's folder without a checkpoint, or a folder training has not
 * written yet) `onWait` is told once why it waits; any other refusal is thrown.
 */
export async function untilFirstWeights(run: string, everyMs: number, stopped: Promise<void>, onWait: (why: string) => void): Promise<boolean> {
  let told = false;
  for (;;) {
    try {
      resolveModelSource(run);
      return true;
    } catch (e) {
      if (!(e instanceof NoWeightsYetError) && !notWrittenYet(run)) throw e;
      if (!told) onWait(e instanceof NoWeightsYetError ? `${run} has no checkpoint or saved model yet` : `${run} holds no run yet`);
      told = true;
    }
    let timer: NodeJS.Timeout | undefined;
    const slept = new Promise<boolean>((done) => (timer = setTimeout(() => done(false), everyMs)));
    const stop = await Promise.race([slept, stopped.then(() => true)]);
    clearTimeout(timer);
    if (stop) return false;
  }
}

/** A path training may be about to write a run into: nothing there yet, or a folder without its config. */
function notWrittenYet(run: string): boolean {
  if (!existsSync(run)) return true;
  return statSync(run).isDirectory() && !existsSync(join(run, 'config.json')) && !existsSync(join(run, ADAPTER_CONFIG));
}
