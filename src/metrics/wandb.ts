import type { EvalRecord, StepRecord, TrainObserver } from './records.js';
import { clusterSamples } from './throughput.js';
import { hasWandbKey } from './wandb_key.js';

/**
 * --wandb: logs rank 0's measurements to Weights & Biases through its JavaScript SDK, when the
 * `@wandb/sdk` package is installed (an optional dependency: imported only if present) and a key
 * is there (WANDB_API_KEY, or the one `wandb login` stored in ~/.netrc; or WANDB_MODE=offline).
 * Otherwise one clear message, and training goes on without it. Per-layer gradient norms are
 * logged when tracked (--track-gradients), as grad_norm/<parameter>.
 */

/** The part of the SDK used here (`import wandb from '@wandb/sdk'`). */
export interface WandbApi {
  init(opts: { project?: string; name?: string; config?: object }): Promise<unknown>;
  log(data: Record<string, number>): void;
  finish(): Promise<void>;
}

export interface WandbOptions {
  project?: string;
  name: string;
  config: object;
  /** Ranks that train (a parameter server excluded): throughput is the cluster's (throughput.ts). */
  worldSize?: number;
  env?: NodeJS.ProcessEnv;
  /** Where the one message goes (stderr by default). */
  warn?: (line: string) => void;
  /** Where ~/.netrc is looked for (a test replaces it). */
  home?: string;
  /** Loads the SDK (a test replaces it). */
  load?: () => Promise<unknown>;
}

const SDK = '@wandb/sdk';

/** The W&B sink, or null (after one message saying why) when it cannot run. */
export async function openWandb(o: WandbOptions): Promise<WandbObserver | null> {
  const env = o.env ?? process.env;
  const warn = o.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  const keyed = hasWandbKey(env, o.home) || env.WANDB_MODE === 'offline';
  let api: WandbApi | null = null;
  let missing = false;
  try {
    api = sdkOf(await (o.load ?? (() => import(SDK)))());
  } catch (e) {
    missing = isModuleNotFound(e);
    if (!missing) {
      warn(`smolcluster: --wandb: could not load ${SDK} (${firstLine(e)}); training continues without W&B`);
      return null;
    }
  }
  if (missing || !api || !keyed) {
    const why = [missing || !api ? `the ${SDK} package is not installed (npm install ${SDK})` : '', keyed ? '' : 'no W&B key (WANDB_API_KEY, `wandb login`\'s ~/.netrc) nor WANDB_MODE=offline']
      .filter(Boolean).join(' and ');
    warn(`smolcluster: --wandb: ${why}; training continues without W&B`);
    return null;
  }
  try {
    await api.init({ project: o.project ?? 'smolcluster', name: o.name, config: o.config });
  } catch (e) {
    warn(`smolcluster: --wandb: W&B init failed (${firstLine(e)}); training continues without W&B`);
    return null;
  }
  return new WandbObserver(api, o.worldSize ?? 1, warn);
}

/** An SDK error in one line: its first, cut at 200 characters (a stack trace is no message). */
export function firstLine(e: unknown): string {
  const text = (e instanceof Error ? e.message : String(e)).split('\n').find((l) => l.trim() !== '') ?? 'unknown error';
  return text.length > 200 ? `${text.slice(0, 197)}...` : text.trim();
}

/** Logs every step and evaluation; `finish()` must be awaited at the end (the SDK flushes then). */
export class WandbObserver implements TrainObserver {
  /** Set at the first failing call: W&B is then left alone, said once, and training goes on. */
  private failed = false;

  constructor(private readonly api: WandbApi, private readonly worldSize: number, private readonly warn: (line: string) => void = (l) => process.stderr.write(`${l}\n`)) {}

  private guarded(what: string, call: () => unknown): void {
    if (this.failed) return;
    try {
      const r = call();
      if (r instanceof Promise) r.catch((e: unknown) => this.fail(what, e));
    } catch (e) {
      this.fail(what, e);
    }
  }

  private fail(what: string, e: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.warn(`smolcluster: --wandb: W&B ${what} failed (${firstLine(e)}); training continues without W&B`);
  }

  onStep(r: StepRecord): void {
    const ms = r.computeMs + r.commMs + r.waitMs;
    const data: Record<string, number> = {
      step: r.step, epoch: r.epoch, loss: r.loss, lr: r.lr, compute_ms: r.computeMs, comm_ms: r.commMs, wait_ms: r.waitMs,
      samples_per_sec: ms > 0 ? (clusterSamples(r, this.worldSize) * 1000) / ms : 0,
    };
    if (r.gradNorm !== undefined) data.grad_norm = r.gradNorm;
    for (const [name, norm] of Object.entries(r.layerGradNorms ?? {})) data[`grad_norm/${name}`] = norm;
    this.guarded('log', () => this.api.log(data));
  }

  onEval(r: EvalRecord): void {
    this.guarded('log', () => this.api.log({ step: r.step, test_loss: r.loss, ...(r.accuracy !== null ? { test_accuracy: r.accuracy } : {}) }));
  }

  async finish(): Promise<void> {
    if (this.failed) return;
    try {
      await this.api.finish();
    } catch (e) {
      this.fail('finish', e);
    }
  }
}

function sdkOf(mod: unknown): WandbApi {
  const m = mod as { default?: unknown };
  const api = (m.default ?? mod) as Partial<WandbApi>;
  if (typeof api.init !== 'function' || typeof api.log !== 'function' || typeof api.finish !== 'function') {
    throw new Error(`${SDK} has no init/log/finish`);
  }
  return api as WandbApi;
}

function isModuleNotFound(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}
