/**
 * The driver of pipelined generation (rank 0, which holds stage 0): a batch of decoding rows with
 * DecodeBatch's shape (join, step, leave), whose forwards run through P stages on P processes.
 *
 * The decoding rows travel in as many groups as stages (at most one per row), each group going
 * round the pipe on its own: a step sends the rows whose last token is known and returns the oldest
 * group's new tokens, leaving the others in flight, so while stage 1 works on one group stage 0
 * works on the next and every stage is busy once the pipe is full. The last stage samples and sends
 * each row's token back; the driver records it in the row's sequence (the stop rules stay here).
 * A step may thus return tokens for some rows only (the scheduler and generateAcross take that).
 *
 * Every wait has a deadline naming the stage waited for; a stage that is lost (its process killed,
 * its host gone) or fails breaks the pipeline: the requests in flight fail with a StageLostError
 * naming the stage, its rank and host, and so does every later join (the server answers 503).
 */
import type { Transport } from '../../comm/transport.js';
import type { Sequence } from '../../generate/sequence.js';
import { Tensor } from '../../tensor/tensor.js';
import { TimeoutError } from '../../util/errors.js';
import { ApiError } from '../api_error.js';
import type { StageRows } from './stage_rows.js';
import { FAILURE_TAG, PASS_TAG, type RowSampling, TOKENS_TAG, decodeTokens, encodePass } from './stage_wire.js';

/** What the last stage needs to sample `sequence`'s tokens as one process would. */
function samplingOf(sequence: Sequence): RowSampling {
  const o = sequence.options;
  return {
    promptIds: [...sequence.promptIds], temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP, repetitionPenalty: o.repetitionPenalty,
    presencePenalty: o.presencePenalty, frequencyPenalty: o.frequencyPenalty, logitBias: o.logitBias?.map(([id, b]) => [id, b]), seed: o.seed,
  };
}

/** A broken pipeline: OpenAI's 503 object, naming the stage. */
export class StageLostError extends ApiError {
  constructor(message: string) {
    super(503, `${message}; the pipeline's requests in flight failed and new ones are refused until the stages are restarted`, 'server_error', null, 'stage_lost');
    this.name = 'StageLostError';
  }
}

export interface PipelinedBatchOptions {
  /** How long a step may wait for its tokens (ms). */
  timeoutMs: number;
  /** Row groups in flight at once (default: one per stage). */
  groups?: number;
}

export class PipelinedBatch {
  private readonly rowOf = new Map<Sequence, number>();
  /** Groups sent down the pipe whose tokens have not come back, oldest first (the last stage answers in order). */
  private readonly inFlight: [Sequence, number][][] = [];
  private readonly flying = new Set<Sequence>();
  /** Tokens collected while a join drained the pipe, for the next step. */
  private readonly ready: { sequence: Sequence; token: number }[] = [];
  private nextRow = 0;
  private nextGroup = 0;
  private broken: StageLostError | null = null;
  private failNow: (e: StageLostError) => void = () => {};
  private readonly failure: Promise<never>;
  private readonly onLost = (rank: number, e: Error): void => this.breakWith(`pipeline stage ${rank} (rank ${rank} at ${this.host(rank)}) was lost: ${e.message}`);

  constructor(private readonly transport: Transport, private readonly stage0: StageRows, private readonly o: PipelinedBatchOptions) {
    if (transport.rank !== 0) throw new Error(`pipeline: the driver is rank 0, not ${transport.rank}`);
    this.failure = new Promise<never>((_, reject) => (this.failNow = reject));
    this.failure.catch(() => {});
    transport.on('peerLost', this.onLost);
    for (let r = 1; r < transport.size; r++) void this.watchFailures(r);
  }

  get stages(): number {
    return this.transport.size;
  }

  get size(): number {
    return this.rowOf.size;
  }

  /** Set once a stage is lost or failed: what every later request is told. */
  get lost(): StageLostError | null {
    return this.broken;
  }

  /** Prefills `sequence`'s prompt through the stages and records its first token. */
  async join(sequence: Sequence): Promise<number> {
    return (await this.joinAll([sequence]))[0];
  }

  /**
   * Prefills prompts of one length together (as DecodeBatch.joinAll: one causal forward of their
   * rows on every stage, one pass down the pipe) and records each one's first token.
   */
  async joinAll(sequences: readonly Sequence[]): Promise<number[]> {
    this.check();
    if (sequences.length === 0) return [];
    const T = sequences[0].promptIds.length;
    if (sequences.some((s) => s.promptIds.length !== T)) throw new Error(`pipeline: prompts joining together must be of one length, got ${sequences.map((s) => s.promptIds.length).join(', ')}`);
    // The last stage answers in the order groups were sent: the groups in flight come back first.
    await this.drain();
    const rows = sequences.map((s) => {
      const row = this.nextRow++;
      this.rowOf.set(s, row);
      return row;
    });
    try {
      await this.send('prefill', rows, sequences.flatMap((s) => s.promptIds), sequences.map(samplingOf));
      const tokens = await this.receive(rows);
      return sequences.map((s, i) => s.accept(tokens[i]));
    } catch (e) {
      for (const s of sequences) this.leave(s);
      throw e;
    }
  }

  /**
   * The next group's tokens. The rows not in flight go down the pipe first, in as many groups as it
   * has room for (one per stage in all), then the oldest group in flight is awaited: the others stay
   * in flight across steps, so each stage works on one group while the next works on another.
   */
  async step(): Promise<{ sequence: Sequence; token: number }[]> {
    this.check();
    if (this.ready.length > 0) return this.ready.splice(0);
    const idle = [...this.rowOf].filter(([s]) => !this.flying.has(s));
    const room = Math.min(idle.length, (this.o.groups ?? this.stages) - this.inFlight.length);
    for (let g = 0; g < room; g++) {
      const group = idle.filter((_, i) => i % room === g);
      await this.send('decode', group.map(([, r]) => r), group.map(([s]) => s.ids[s.ids.length - 1]));
      this.inFlight.push(group);
      for (const [s] of group) this.flying.add(s);
    }
    const oldest = this.inFlight.shift();
    return oldest ? this.collect(oldest) : [];
  }

  /** A group's tokens, recorded in the sequences still decoding (a row that left meanwhile is skipped). */
  private async collect(group: [Sequence, number][]): Promise<{ sequence: Sequence; token: number }[]> {
    for (const [s] of group) this.flying.delete(s);
    const tokens = await this.receive(group.map(([, r]) => r));
    return group.flatMap(([sequence, row], i) => (this.rowOf.get(sequence) === row ? [{ sequence, token: sequence.accept(tokens[i]) }] : []));
  }

  /** Every group in flight collected (before a prefill), its tokens kept for the next step. */
  private async drain(): Promise<void> {
    while (this.inFlight.length > 0) this.ready.push(...await this.collect(this.inFlight.shift()!));
  }

  /** Frees `sequence`'s row on every stage. */
  leave(sequence: Sequence): void {
    const row = this.rowOf.get(sequence);
    if (row === undefined) return;
    this.rowOf.delete(sequence);
    this.stage0.leave(row);
    if (this.broken || this.stages === 1) return;
    this.transport.send(1, PASS_TAG, encodePass({ kind: 'leave', group: -1, rows: [row], T: 0, width: 0 })).catch(() => {});
  }

  /** Tells the stages to stop (their processes exit) and stops listening. */
  async close(): Promise<void> {
    this.transport.off('peerLost', this.onLost);
    if (!this.broken && this.stages > 1) await this.transport.send(1, PASS_TAG, encodePass({ kind: 'stop', group: -1, rows: [], T: 0, width: 0 }), { timeoutMs: 5000 }).catch(() => {});
    this.broken ??= new StageLostError('the pipeline was closed');
  }

  private check(): void {
    if (this.broken) throw this.broken;
  }

  /** Stage 0's forward of `ids` for `rows`, handed to stage 1 (not awaiting the wire: stage 0 goes on with the next group). */
  private async send(kind: 'prefill' | 'decode', rows: number[], ids: readonly number[], sampling?: RowSampling[]): Promise<void> {
    const group = this.nextGroup++;
    const T = ids.length / rows.length;
    const input = Tensor.from(ids, [rows.length, T], 'int32');
    const out = this.stage0.forward(input, rows);
    const activations = await out.read() as Float32Array;
    const bytes = encodePass({ kind, group, rows, T, width: out.shape[2], sampling, activations });
    this.transport.send(1, PASS_TAG, bytes, { timeoutMs: this.o.timeoutMs, op: 'pipeline send' }).catch((e: Error) => this.breakWith(`pipeline stage 1 (rank 1 at ${this.host(1)}) cannot be reached: ${e.message}`));
  }

  /** The tokens of the next group back from the last stage, checked against its rows. */
  private async receive(rows: number[]): Promise<number[]> {
    const last = this.stages - 1;
    let bytes: Uint8Array;
    try {
      bytes = await Promise.race([this.transport.recv(last, TOKENS_TAG, { timeoutMs: this.o.timeoutMs, op: 'pipeline step' }), this.failure]);
    } catch (e) {
      if (e instanceof TimeoutError) this.breakWith(`pipeline: no tokens from the last stage (stage ${last}, rank ${last} at ${this.host(last)}) or a stage before it within ${this.o.timeoutMs / 1000} s`);
      else if (!(e instanceof StageLostError)) this.breakWith(`pipeline stage ${last} (rank ${last} at ${this.host(last)}): ${(e as Error).message}`);
      throw this.broken;
    }
    const got = decodeTokens(bytes);
    if (got.rows.join() !== rows.join()) this.breakWith(`pipeline: the last stage answered rows ${got.rows.join(', ')} for ${rows.join(', ')}`);
    this.check();
    return got.tokens;
  }

  /** A stage's own report of a failed forward breaks the pipeline with its words. */
  private async watchFailures(rank: number): Promise<void> {
    for (;;) {
      try {
        const bytes = await Promise.race([this.transport.recv(rank, FAILURE_TAG, { timeoutMs: 3_600_000, op: 'pipeline failure watch' }), this.failure]);
        this.breakWith(new TextDecoder().decode(bytes));
        return;
      } catch (e) {
        if (!(e instanceof TimeoutError)) return;
      }
    }
  }

  private breakWith(message: string): void {
    if (this.broken) return;
    this.broken = new StageLostError(message);
    this.failNow(this.broken);
  }

  private host(rank: number): string {
    try {
      return this.transport.peerHost(rank);
    } catch {
      return 'unknown host';
    }
  }
}
