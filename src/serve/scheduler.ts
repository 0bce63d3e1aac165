/**
 * Continuous batching for the server: requests wait in a queue, join the running batch at the next
 * step while it has room (the prompts of one length prefilled together, one forward per length),
 * and every step decodes
 * one token for all of them with one forward (generate/batch.ts). A request leaves the batch as it
 * stops or as its client goes away (its AbortSignal), freeing its row for the next in the queue. A
 * request that waits longer than the queue timeout is refused (503), so no wait is unbounded.
 * Between steps the loop yields to the event loop: new requests and disconnects are seen there.
 * A request of several choices (OpenAI's n) joins when it finds a row for each: its prompt is
 * prefilled once and its cache copied to the other choices (DecodeBatch.joinAll); it resolves once
 * every choice has stopped. A request that only scores its prompt (max_tokens 0 with echo) takes no
 * row: its prompt is prefilled for its log-probabilities and dropped.
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

/** A request of several choices from one prompt (OpenAI's n), which is prefilled once for all. */
export interface ChoicesJob extends Omit<Job, 'options' | 'onToken'> {
  /** One sequence's options per choice. */
  choices: readonly SequenceOptions[];
  /** Called with each new token of a choice (its index) as it is chosen. */
  onToken?: (id: number, sequence: Sequence, choice: number) => void;
}

interface Entry {
  job: ChoicesJob;
  sequences: Sequence[];
  results: (GenerateResult | undefined)[];
  resolve(r: GenerateResult[]): void;
  reject(e: unknown): void;
  timer?: NodeJS.Timeout;
}

/** Whether `entry` only scores its prompt (no token to generate, its prompt's logprobs asked). */
function scoresOnly(entry: Entry): boolean {
  const first = entry.sequences[0];
  return first.maxNewTokens === 0 && first.options.promptLogprobs !== undefined;
}

/** The batch rows `entry` takes: one per choice, none to score a prompt alone. */
function rowsOf(entry: Entry): number {
  return entry.sequences[0].maxNewTokens === 0 ? 0 : entry.sequences.length;
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

  /** Rows decoded together at most (a request's choices must fit in them). */
  get maxBatch(): number {
    return this.o.maxBatch;
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
  async submit(job: Job): Promise<GenerateResult> {
    const { options, onToken, ...rest } = job;
    return (await this.submitChoices({ ...rest, choices: [options], ...(onToken ? { onToken: (id, s) => onToken(id, s) } : {}) }))[0];
  }

  /** Queues a generation of several choices; resolves with each one's result once all have stopped. */
  submitChoices(job: ChoicesJob): Promise<GenerateResult[]> {
    if (this.closed) return Promise.reject(new ApiError(503, 'the server is shutting down', 'server_error'));
    if (job.choices.length < 1 || job.choices.length > this.o.maxBatch) {
      return Promise.reject(new ApiError(400, `'n' must be between 1 and this server's --max-batch (${this.o.maxBatch}): a request's choices decode together, got ${job.choices.length}`, 'invalid_request_error', 'n', 'invalid_value'));
    }
    // One prompt array for every choice: DecodeBatch prefills it once for all of them.
    const prompt = [...job.promptIds];
    let sequences: Sequence[];
    try {
      sequences = job.choices.map((options) => new Sequence(prompt, options));
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<GenerateResult[]>((resolve, reject) => {
      const entry: Entry = { job, sequences, results: sequences.map(() => undefined), resolve, reject };
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
    for (const [sequence, entry] of this.rows) if (entry.job.signal?.aborted) this.finish(entry, sequence, sequence.result('callback'));
  }

  /** Waiting requests take the free rows, prefilled together by prompt length and given their first tokens. */
  private async admit(): Promise<void> {
    const joining = new Map<Sequence, Entry>();
    const scoring = new Map<Sequence, Entry>();
    let taken = 0;
    while (this.waiting.length > 0 && this.rows.size + taken + rowsOf(this.waiting[0]) <= this.o.maxBatch) {
      const entry = this.waiting.shift()!;
      clearTimeout(entry.timer);
      const into = scoresOnly(entry) ? scoring : joining;
      if (entry.job.signal?.aborted) entry.resolve(entry.sequences.map((s) => s.result('callback')));
      else if (entry.sequences[0].maxNewTokens === 0 && into === joining) entry.resolve(entry.sequences.map((s) => s.result('length')));
      else {
        for (const s of entry.sequences) into.set(s, entry);
        taken += rowsOf(entry);
      }
    }
    await this.score(scoring);
    for (const group of byPromptLength([...joining.keys()])) {
      let tokens: number[];
      try {
        tokens = await this.batch.joinAll(group);
      } catch (e) {
        for (const s of group) joining.get(s)!.reject(e);
        continue;
      }
      for (const s of group) this.rows.set(s, joining.get(s)!);
      group.forEach((s, i) => this.rows.has(s) && this.deliver(joining.get(s)!, s, tokens[i]));
    }
  }

  /** Prefills the prompts that are only scored, for their log-probabilities, and resolves their requests. */
  private async score(scoring: Map<Sequence, Entry>): Promise<void> {
    for (const group of byPromptLength([...scoring.keys()])) {
      try {
        if (!this.batch.scoreAll) throw new ApiError(400, 'scoring a prompt alone (max_tokens 0 with echo) is not served by a pipeline of stages', 'invalid_request_error', 'max_tokens', 'unsupported_parameter');
        await this.batch.scoreAll(group);
        for (const entry of new Set(group.map((s) => scoring.get(s)!))) entry.resolve(entry.sequences.map((s) => s.result('length')));
      } catch (e) {
        for (const s of group) scoring.get(s)!.reject(e);
      }
    }
  }

  private async decodeStep(): Promise<void> {
    let tokens: { sequence: Sequence; token: number }[];
    try {
      tokens = await this.batch.step();
    } catch (e) {
      // A forward that fails fails every request in it; the server goes on with the next ones.
      for (const entry of new Set(this.rows.values())) this.fail(entry, e);
      return;
    }
    for (const { sequence, token } of tokens) {
      const entry = this.rows.get(sequence);
      if (entry) this.deliver(entry, sequence, token);
    }
  }

  private deliver(entry: Entry, sequence: Sequence, token: number): void {
    try {
      entry.job.onToken?.(token, sequence, entry.sequences.indexOf(sequence));
    } catch (e) {
      this.fail(entry, e);
      return;
    }
    const reason = sequence.stopped();
    if (reason) this.finish(entry, sequence, sequence.result(reason));
  }

  /** `sequence` has stopped: its row is freed, and its request resolves once every choice has. */
  private finish(entry: Entry, sequence: Sequence, result: GenerateResult): void {
    this.batch.leave(sequence);
    this.rows.delete(sequence);
    entry.results[entry.sequences.indexOf(sequence)] = result;
    if (entry.results.every((r) => r !== undefined)) entry.resolve(entry.results as GenerateResult[]);
  }

  /** The request fails: every row of its choices is freed. */
  private fail(entry: Entry, e: unknown): void {
    clearTimeout(entry.timer);
    for (const s of entry.sequences) {
      if (!this.rows.has(s)) continue;
      this.batch.leave(s);
      this.rows.delete(s);
    }
    entry.reject(e);
  }
}
