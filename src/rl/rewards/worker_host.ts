/**
 * A reward function run in a worker thread (reward_worker.ts): calls one at a time, each with a
 * deadline. A call that does not answer in time is rejected with a TimeoutError and the worker is
 * terminated (a synchronous endless loop or a regex's catastrophic backtracking cannot be stopped any
 * other way) and started afresh for the next call, so a hang costs one timeout and never blocks the
 * run.
 */
import { Worker } from 'node:worker_threads';
import { TimeoutError } from '../../util/errors.js';
import type { RewardRow } from './reward.js';
import type { WorkerReply, WorkerRequest, WorkerSetup } from './reward_worker.js';

/** A reward's default deadline per completion, in ms. */
export const DEFAULT_REWARD_TIMEOUT_MS = 10_000;

/** One worker running the reward; restarted after a timeout. `what` names it in errors. */
export class WorkerHost {
  private worker: Worker | null = null;
  private ready: Promise<void> | null = null;
  private nextId = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly pending = new Map<number, { resolve: (v: number) => void; reject: (e: Error) => void }>();
  private closed = false;

  constructor(private readonly setup: WorkerSetup, private readonly timeoutMs: number, private readonly what: string) {}

  /** Starts the worker and waits for the module to load. */
  start(): Promise<void> {
    const worker = new Worker(new URL('./reward_worker.js', import.meta.url), { workerData: this.setup });
    worker.unref();
    this.worker = worker;
    this.ready = new Promise<void>((resolveReady, rejectReady) => {
      const timer = setTimeout(() => {
        void worker.terminate();
        rejectReady(new TimeoutError(`loading ${this.what}`, [], this.timeoutMs));
      }, this.timeoutMs);
      worker.on('message', (reply: WorkerReply) => {
        if (reply.kind === 'ready') {
          clearTimeout(timer);
          resolveReady();
        } else if (reply.kind === 'load-error') {
          clearTimeout(timer);
          void worker.terminate();
          rejectReady(new Error(`${this.what}: ${reply.message}`));
        } else this.settle(reply);
      });
      // A worker terminated after a timeout is no longer this.worker: its exit fails nothing of its successor's.
      worker.on('error', (err) => {
        clearTimeout(timer);
        rejectReady(new Error(`${this.what}: ${err.message}`));
        if (this.worker === worker) this.failAll(new Error(`the worker of ${this.what} failed: ${err.message}`));
      });
      worker.on('exit', (code) => {
        clearTimeout(timer);
        rejectReady(new Error(`${this.what}: its worker exited (code ${code}) while loading`));
        if (this.worker !== worker) return;
        this.worker = null;
        this.failAll(new Error(`the worker of ${this.what} exited (code ${code})`));
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
    if (this.closed) throw new Error(`${this.what} was closed`);
    if (!this.worker) await this.start();
    else await this.ready;
    const worker = this.worker!;
    const id = this.nextId++;
    return new Promise<number>((resolveCall, rejectCall) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.worker = null; // the next call starts a fresh one
        void worker.terminate();
        rejectCall(new TimeoutError(`a call of ${this.what}`, [], this.timeoutMs));
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
        this.pending.get(id)?.reject(new Error(`the row cannot be sent to ${this.what}: ${(err as Error).message}`));
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
