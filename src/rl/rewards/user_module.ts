/**
 * A reward written by the user: a JavaScript module (`./my_reward.mjs`) exporting a default or named
 * function `(prompt, completion, row) => number | Promise<number>`. Its calls run in a worker thread
 * (user_module_worker.ts), one at a time, each with a deadline: a call that does not answer in time
 * is rejected with a TimeoutError and the worker is terminated (a synchronous endless loop cannot
 * be stopped any other way) and started afresh for the next call, so a hang costs one timeout and
 * never blocks the run. Module state survives between calls, but not a restart.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { TimeoutError } from '../../util/errors.js';
import type { Reward, RewardRow } from './reward.js';
import type { WorkerReply, WorkerRequest, WorkerSetup } from './user_module_worker.js';

/** A reward's default deadline per completion, in ms. */
export const DEFAULT_REWARD_TIMEOUT_MS = 10_000;

export interface UserRewardOptions {
  /** The export to call (default: the default export, else the module's only exported function). */
  exportName?: string;
  /** The deadline of one call, in ms (default 10 s); loading the module gets the same. */
  timeoutMs?: number;
  /** The reward's name in metrics and warnings (default: the file's base name). */
  name?: string;
}

/** Loads `file` in a worker: resolves once its function is found, else rejects naming the file. */
export async function userModuleReward(file: string, options: UserRewardOptions = {}): Promise<Reward> {
  const path = resolve(file);
  if (!existsSync(path)) throw new Error(`reward module ${file}: no such file`);
  const timeoutMs = options.timeoutMs ?? DEFAULT_REWARD_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new RangeError(`reward module ${file}: timeoutMs must be > 0, got ${timeoutMs}`);
  const host = new WorkerHost({ file: path, exportName: options.exportName }, timeoutMs);
  await host.start();
  const name = options.name ?? path.split(/[\\/]/).at(-1)!.replace(/\.[cm]?js$/, '');
  return {
    name,
    timeoutMs,
    score: (prompt: string, completion: string, row: RewardRow) => host.call(prompt, completion, row),
    close: () => host.close(),
  };
}

/** One worker running the module; restarted after a timeout. */
class WorkerHost {
  private worker: Worker | null = null;
  private ready: Promise<void> | null = null;
  private nextId = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly pending = new Map<number, { resolve: (v: number) => void; reject: (e: Error) => void }>();
  private closed = false;

  constructor(private readonly setup: WorkerSetup, private readonly timeoutMs: number) {}

  /** Starts the worker and waits for the module to load. */
  start(): Promise<void> {
    const worker = new Worker(new URL('./user_module_worker.js', import.meta.url), { workerData: this.setup });
    worker.unref();
    this.worker = worker;
    this.ready = new Promise<void>((resolveReady, rejectReady) => {
      const timer = setTimeout(() => {
        void worker.terminate();
        rejectReady(new TimeoutError(`loading reward module ${this.setup.file}`, [], this.timeoutMs));
      }, this.timeoutMs);
      worker.on('message', (reply: WorkerReply) => {
        if (reply.kind === 'ready') {
          clearTimeout(timer);
          resolveReady();
        } else if (reply.kind === 'load-error') {
          clearTimeout(timer);
          void worker.terminate();
          rejectReady(new Error(`reward module ${this.setup.file}: ${reply.message}`));
        } else this.settle(reply);
      });
      // A worker terminated after a timeout is no longer this.worker: its exit fails nothing of its successor's.
      worker.on('error', (err) => {
        clearTimeout(timer);
        rejectReady(new Error(`reward module ${this.setup.file}: ${err.message}`));
        if (this.worker === worker) this.failAll(new Error(`the reward module's worker failed: ${err.message}`));
      });
      worker.on('exit', (code) => {
        clearTimeout(timer);
        rejectReady(new Error(`reward module ${this.setup.file}: its worker exited (code ${code}) while loading`));
        if (this.worker !== worker) return;
        this.worker = null;
        this.failAll(new Error(`the reward module's worker exited (code ${code})`));
      });
    });
    return this.ready;
  }

  /** One score, after the calls before it (one at a time: a timeout then blames the right call). */
  call(prompt: string, completion: string, row: RewardRow): Promise<number> {
    const run = this.queue.then(() => this.callNow(prompt, completion, row));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async callNow(prompt: string, completion: string, row: RewardRow): Promise<number> {
    if (this.closed) throw new Error('the reward module was closed');
    if (!this.worker) await this.start();
    else await this.ready;
    const worker = this.worker!;
    const id = this.nextId++;
    return new Promise<number>((resolveCall, rejectCall) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.worker = null; // the next call starts a fresh one
        void worker.terminate();
        rejectCall(new TimeoutError('reward module call', [], this.timeoutMs));
      }, this.timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolveCall(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          rejectCall(e);
        },
      });
      try {
        worker.postMessage({ id, prompt, completion, row } satisfies WorkerRequest);
      } catch (err) {
        // A row that cannot be copied to the worker (a function in it): this call fails, the worker lives on.
        this.pending.get(id)?.reject(new Error(`the row cannot be sent to the reward module: ${(err as Error).message}`));
        this.pending.delete(id);
      }
    });
  }

  private settle(reply: Exclude<WorkerReply, { kind: 'ready' } | { kind: 'load-error' }>): void {
    const waiter = this.pending.get(reply.id);
    if (!waiter) return; // answered after its timeout
    this.pending.delete(reply.id);
    if (reply.kind === 'value') waiter.resolve(reply.value);
    else waiter.reject(new Error(reply.message));
  }

  private failAll(err: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(err);
    this.pending.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }
}
