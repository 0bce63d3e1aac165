/**
 * Continuous batching for generation: sequences of different lengths decode together, one forward
 * for all of them per step, and join or leave between steps. Joining sequences' prompts are
 * prefilled by one forward per prompt length (those of one length as the rows of one causal
 * forward; each's first token chosen from it); each decode step then runs
 * every row's last token as one [N, 1] forward, each row at its own position (KvCache: per-row
 * positions, attention per row over its own cache), so the weight matmuls are shared by the batch.
 */
import { withAdapterRows } from '../nn/lora/adapter_rows.js';
import type { BufferRecycler } from '../tensor/recycler.js';
import type { CastCache } from '../tensor/ops/cast_cache.js';
import type { Precision } from '../tensor/precision.js';
import type { Device } from '../tensor/storage.js';
import { Tensor } from '../tensor/tensor.js';
import { type CausalLm, allLogits, lastLogits } from './generate.js';
import { StepLogits } from './step_logits.js';
import { inferenceForward, stepRecycler, weightCasts } from './inference_forward.js';
import { KvCache, SequenceCache } from './kv_cache.js';
import { type GenerateResult, Sequence, type SequenceOptions } from './sequence.js';

interface Row {
  sequence: Sequence;
  cache: SequenceCache;
}

/** The decoding rows of a batch and the forwards that advance them. The model must be in eval mode. */
export class DecodeBatch {
  private rows: Row[] = [];

  /** bf16: the weights cast once for the batch's life (the weights do not change under it). */
  private readonly casts: CastCache | null;
  /** fp32 on the cpu: each forward's buffers are the last one's (its logits are read before the next). */
  private readonly recycler: BufferRecycler | null;
  /** The model's device, where the ids go (looked up once: listing the parameters each step showed in the profile). */
  private readonly device: Device | undefined;
  /** A step's logits, read into one array for the batch's life (each row's chosen from before the next step). */
  private readonly stepLogits = new StepLogits();

  constructor(private readonly model: CausalLm, private readonly precision: Precision = 'fp32') {
    this.casts = weightCasts(model, precision);
    this.recycler = stepRecycler(model, precision);
    this.device = model.firstParameter()?.device;
  }

  /** The sequences decoding now. */
  get size(): number {
    return this.rows.length;
  }

  /** Prefills `sequence`'s prompt, chooses its first token and adds it to the rows. */
  async join(sequence: Sequence): Promise<number> {
    return (await this.joinAll([sequence]))[0];
  }

  /**
   * Prefills the prompts of `sequences`, all of one length, as the rows of one forward (a matrix
   * product over all their positions instead of one per prompt), chooses each one's first token
   * and adds them to the rows; their first tokens, in order. Sequences over one prompt array (a
   * request's n choices: the same `promptIds` object) and adapter share its prefill: the prompt runs
   * once and its cache is copied to the others. A sequence asking for prompt logprobs gets them from
   * its prompt's prefill (run alone, the head at every position: see prefill).
   */
  async joinAll(sequences: readonly Sequence[]): Promise<number[]> {
    if (sequences.length === 0) return [];
    const leads = prefillLeads(sequences);
    const caches = leads.map(() => new SequenceCache());
    const owned: SequenceCache[] = [];
    try {
      const logits = await this.prefill(leads, caches, sequences);
      const taken = new Set<SequenceCache>();
      const rows = sequences.map((sequence) => {
        const cache = caches[leadOf(leads, sequence)];
        const mine = taken.has(cache) ? cache.copy() : cache;
        taken.add(cache);
        owned.push(mine);
        return { sequence, cache: mine };
      });
      this.rows = byAdapter([...this.rows, ...rows]);
      return sequences.map((s) => s.choose(logits[leadOf(leads, s)]));
    } catch (e) {
      for (const c of new Set([...caches, ...owned])) c.dispose();
      throw e;
    }
  }

  /**
   * Prefills the prompts of `sequences` (of one length) only to record their prompt logprobs
   * (a request with max_tokens 0 and echo): nothing is chosen, no row is kept.
   */
  async scoreAll(sequences: readonly Sequence[]): Promise<void> {
    if (sequences.length === 0) return;
    const leads = prefillLeads(sequences);
    const caches = leads.map(() => new SequenceCache());
    try {
      await this.prefill(leads, caches, sequences);
    } finally {
      for (const c of caches) c.dispose();
    }
  }

  /** One forward of every row's last token together; each row's sequence and its new token, in row order. */
  async step(): Promise<{ sequence: Sequence; token: number }[]> {
    if (this.rows.length === 0) return [];
    const rows = [...this.rows];
    const last = rows.map((r) => r.sequence.ids[r.sequence.ids.length - 1]);
    const logits = await this.forward(last, rows.map((r) => r.cache), rows.map((r) => r.sequence));
    return rows.map((r, i) => ({ sequence: r.sequence, token: r.sequence.choose(logits[i]) }));
  }

  /** Removes `sequence` from the rows (finished, or its client gone) and frees its cache. */
  leave(sequence: Sequence): void {
    const row = this.rows.find((r) => r.sequence === sequence);
    if (!row) return;
    this.rows = this.rows.filter((r) => r !== row);
    row.cache.dispose();
  }

  /**
   * The prefill of the `leads`' prompts (one length, one row each) into `caches`: each row's last
   * logits, and for every sequence of `sequences` that asks, its prompt logprobs from its lead's row.
   * The leads nobody scores run as one forward (the head at their last positions only); each scored
   * lead runs alone, its head at every position: one prompt's [T, vocab] logits at a time, not a
   * batch's (for SmolLM2's vocabulary and 2048 positions that is 400 MB each).
   */
  private async prefill(leads: readonly Sequence[], caches: SequenceCache[], sequences: readonly Sequence[]): Promise<Float32Array[]> {
    const T = leads[0].promptIds.length;
    if (leads.some((s) => s.promptIds.length !== T)) throw new Error(`DecodeBatch.joinAll: prompts joining together must be of one length, got ${leads.map((s) => s.promptIds.length).join(', ')}`);
    const scoring = (lead: Sequence): Sequence[] => sequences.filter((s) => s.options.promptLogprobs !== undefined && leadOf([lead], s) === 0);
    const plain = leads.filter((l) => scoring(l).length === 0);
    const last = new Map<Sequence, Float32Array>();
    if (plain.length > 0) {
      const logits = await lastLogits(this.run(plain.flatMap((s) => s.promptIds), plain.map((l) => caches[leads.indexOf(l)]), plain, true));
      plain.forEach((l, i) => last.set(l, logits[i]));
    }
    for (const lead of leads.filter((l) => !plain.includes(l))) {
      const logits = this.run(lead.promptIds, [caches[leads.indexOf(lead)]], [lead], false);
      const values = await allLogits(logits);
      const V = logits.shape[2];
      const row = (t: number): Float32Array => values.subarray(t * V, (t + 1) * V);
      for (const s of scoring(lead)) s.scorePrompt(row);
      last.set(lead, Float32Array.from(row(T - 1)));
    }
    return leads.map((l) => last.get(l)!);
  }

  /** A forward of `ids` ([N, T] row-major) over the rows' caches, each row on its sequence's adapter; each row's next-token logits. */
  private async forward(ids: readonly number[], caches: SequenceCache[], sequences: readonly Sequence[]): Promise<Float32Array[]> {
    return this.stepLogits.read(this.run(ids, caches, sequences, true));
  }

  /** The forward itself, the caches advanced past it: logits [N, T or 1, vocab] (1: `lastOnly`, each row's last position). */
  private run(ids: readonly number[], caches: SequenceCache[], sequences: readonly Sequence[], lastOnly: boolean): Tensor {
    const N = caches.length;
    const input = Tensor.from(ids, [N, ids.length / N], 'int32', this.device);
    const cache = new KvCache(caches, { lastPositionOnly: lastOnly });
    const logits = withAdapterRows(sequences.map((s) => s.options.adapter ?? null), () => inferenceForward(this.model, input, cache, this.precision, this.casts, this.recycler));
    cache.advance(ids.length / N);
    return logits;
  }
}

/**
 * The sequences whose prompts are prefilled, one row each: the first of each prompt array and
 * adapter (a request's n choices share one array, and so one prefill), in order of appearance.
 */
function prefillLeads(sequences: readonly Sequence[]): Sequence[] {
  const leads: Sequence[] = [];
  for (const s of sequences) if (leadOf(leads, s) < 0) leads.push(s);
  return leads;
}

/** The index of the lead whose prefill `s` shares (-1: none). */
function leadOf(leads: readonly Sequence[], s: Sequence): number {
  return leads.findIndex((l) => l.promptIds === s.promptIds && l.options.adapter === s.options.adapter);
}

/**
 * The rows with those of one adapter next to each other (adapters in order of first appearance,
 * rows in order within each): each adapter's update is then one product per layer (adapter_rows.ts).
 */
function byAdapter(rows: Row[]): Row[] {
  return groupedBy(rows, (r) => r.sequence.options.adapter).flat();
}

/** `items` grouped by `key`, groups in order of first appearance, items in order within each. */
function groupedBy<T, K>(items: readonly T[], key: (item: T) => K): T[][] {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const group = groups.get(key(item));
    if (group) group.push(item);
    else groups.set(key(item), [item]);
  }
  return [...groups.values()];
}

/** `sequences` grouped by prompt length (each group joins a batch in one forward), groups in order of first appearance. */
export function byPromptLength(sequences: readonly Sequence[]): Sequence[][] {
  return groupedBy(sequences, (s) => s.promptIds.length);
}

/**
 * Generates after each of `prompts` (ids of any lengths) in one batch: all rows decode together,
 * each leaving as it stops. Each result equals generate() of that prompt alone (same options).
 */
export async function generateBatch(model: CausalLm, prompts: readonly (readonly number[])[], options: SequenceOptions & { precision?: Precision } = {}): Promise<GenerateResult[]> {
  const sequences = prompts.map((p) => new Sequence(p, options));
  const results = new Map<Sequence, GenerateResult>();
  const wasTraining = model.training;
  model.eval();
  const batch = new DecodeBatch(model, options.precision);
  const settle = (s: Sequence): void => {
    const reason = s.stopped();
    if (!reason) return;
    results.set(s, s.result(reason));
    batch.leave(s);
  };
  try {
    for (const s of sequences) if (s.maxNewTokens === 0) results.set(s, s.result('length'));
    for (const group of byPromptLength(sequences.filter((s) => s.maxNewTokens > 0))) {
      await batch.joinAll(group);
      group.forEach(settle);
    }
    while (batch.size > 0) for (const { sequence } of await batch.step()) settle(sequence);
  } finally {
    model.train(wasTraining);
  }
  return sequences.map((s) => results.get(s)!);
}
