/**
 * Continuous batching for the server: requests wait in a queue, join the running batch at the next
 * step while it has room (the prompts of one length prefilled together, one forward per length),
 * and every step decodes
 * one token for all of them with one forward (generate/batch.ts). A request leaves the batch as it
 * stops or as its client goes away (its AbortSignal), freeing its row for the next in the queue. A
 * request that waits longer than the queue timeout is refused (503), so no wait is unbounded.
 * Between steps the loop yields to the event loop: new requests and disconnects are seen there.
 */
import { DecodeBatch, byPromptLength } from '../generate/batch.js';
import type { CausalLm } from '../generate/generate.js';
import { type GenerateResult, Sequence, type SequenceOptions } from '../generate/sequence.js';
import type { Precision } from '../tensor/precision.js';
import { ApiError } from './api_error.js';
import type { RowBatch } from './served_model.js';

export interface SchedulerOptions {
  /** Rows decoded together at most (--max-batch). */
  maxBatch: number;
  /** How long a request may wait for a row before it is refused (ms). */
  queueTimeoutMs: number;
  precision?: Precision;
}

export interface Job {
  promptIds: readonly number[];
  options: SequenceOptions;
  /** Called with each new token as it is chosen. */
  onToken?: (id: number, sequence: Sequence) => void;
  /** Aborted when the client has gone: the row is freed at the next step. */
  signal?: AbortSignal;
}

interface Entry {
  job: Job;
  sequence: Sequence;
  resolve(r: GenerateResult): void;
  reject(e: unknown): void;
  timer?: NodeJS.Timeout;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class BatchScheduler {
  private readonly batch: RowBatch;
  private readonly waiting: Entry[] = [];
  private readonly rows = new Map<Sequence, Entry>();
  private running = false;
  private closed = false;

  /** `model`: decoded here (a DecodeBatch over it), or rows whose forwards run elsewhere (pipeline stages). */
  constructor(model: CausalLm | RowBatch, private readonly o: SchedulerOptions) {
    if (!Number.isInteger(o.maxBatch) || o.maxBatch < 1) throw new Error(`serve: --max-batch must be an integer >= 1, got ${o.maxBatch}`);
    if ('step' in model) this.batch = model;
    else {
      model.eval();
      this.batch = new DecodeBatch(model, o.precision);
    }
  }

  /** Requests decoding now. */
  get active(): number {
    return this.rows.size;
  }

  /** Requests waiting for a row. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Queues a generation; resolves with its result once it stops (stopReason 'callback' if its client went away). */
  submit(job: Job): Promise<GenerateResult> {
    if (this.closed) return Promise.reject(new ApiError(503, 'the server is shutting down', 'server_error'));
    const sequence = new Sequence(job.promptIds, job.options);
    return new Promise<GenerateResult>((resolve, reject) => {
      const entry: Entry = { job, sequence, resolve, reject };
      entry.timer = setTimeout(() => this.expire(entry), this.o.queueTimeoutMs);
      this.waiting.push(entry);
      if (!this.running) void this.loop();
    });
  }

  /** Refuses new requests and those still waiting; rows being decoded run to their end. */
  close(): void {
    this.closed = true;
    for (const e of this.waiting.splice(0)) this.fail(e, new ApiError(503, 'the server is shutting down', 'server_error'));
  }

  private expire(entry: Entry): void {
    const at = this.waiting.indexOf(entry);
    if (at < 0) return;
    this.waiting.splice(at, 1);
    this.fail(entry, new ApiError(503, `the server is busy: no free row within ${this.o.queueTimeoutMs / 1000} s (--max-batch ${this.o.maxBatch}); retry later`, 'overloaded_error', null, 'server_busy'));
  }

  private fail(entry: Entry, e: unknown): void {
    clearTimeout(entry.timer);
    entry.reject(e);
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.waiting.length > 0 || this.rows.size > 0) {
        this.dropGone();
        await this.admit();
        if (this.rows.size > 0) await this.decodeStep();
        await nextTurn();
      }
    } finally {
      this.running = false;
    }
  }

  /** Rows whose client has gone leave the batch. */
  private dropGone(): void {
    for (const [sequence, entry] of this.rows) if (entry.job.signal?.aborted) this.finish(entry, sequence.result('callback'));
  }

  /** Waiting requests take the free rows, prefilled together by prompt length and given their first tokens. */
  private async admit(): Promise<void> {
    const joining = new Map<Sequence, Entry>();
    while (this.waiting.length > 0 && this.rows.size + joining.size < this.o.maxBatch) {
      const entry = this.waiting.shift()!;
      clearTimeout(entry.timer);
      const { sequence, job } = entry;
      if (job.signal?.aborted) entry.resolve(sequence.result('callback'));
      else if (sequence.maxNewTokens === 0) entry.resolve(sequence.result('length'));
      else joining.set(sequence, entry);
    }
    for (const group of byPromptLength([...joining.keys()])) {
      let tokens: number[];
      try {
        tokens = await this.batch.joinAll(group);
      } catch (e) {
        for (const s of group) joining.get(s)!.reject(e);
        continue;
      }
      group.forEach((s, i) => {
        this.rows.set(s, joining.get(s)!);
        this.deliver(joining.get(s)!, tokens[i]);
      });
    }
  }

  private async decodeStep(): Promise<void> {
    let tokens: { sequence: Sequence; token: number }[];
    try {
      tokens = await this.batch.step();
    } catch (e) {
      // A forward that fails fails every request in it; the server goes on with the next ones.
      for (const [sequence, entry] of this.rows) {
        this.batch.leave(sequence);
        this.rows.delete(sequence);
        entry.reject(e);
      }
      return;
    }
    for (const { sequence, token } of tokens) this.deliver(this.rows.get(sequence)!, token);
  }

  private deliver(entry: Entry, token: number): void {
    try {
      entry.job.onToken?.(token, entry.sequence);
    } catch (e) {
      this.batch.leave(entry.sequence);
      this.rows.delete(entry.sequence);
      entry.reject(e);
      return;
    }
    const reason = entry.sequence.stopped();
    if (reason) this.finish(entry, entry.sequence.result(reason));
  }

  private finish(entry: Entry, result: GenerateResult): void {
    this.batch.leave(entry.sequence);
    this.rows.delete(entry.sequence);
    entry.resolve(result);
  }
}
