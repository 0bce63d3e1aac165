/**
 * The rollout protocol's three working messages, each with its encoder and its validating decoder
 * (wire.ts has the layout): a sampling request, its rollouts, and a weight update. A decoder
 * checks every field against what the receiver can act on (token ids inside the vocabulary, one
 * log-probability per token, the layout of the weights), so a bad message is refused before use.
 */
import { ProtocolError } from '../../util/errors.js';
import type { StopReason } from '../../generate/sequence.js';
import { type WeightDelta } from './weight_delta.js';
import { HeadReader, decodeMessage, encodeMessage } from './wire.js';

/** What one worker is asked to sample: G completions of each of its prompts. */
export interface SampleRequest {
  id: number;
  prompts: number[][];
  /** Prompt p's first completion's seed (completion g samples with seeds[p] + g). */
  seeds: number[];
  generations: number;
  maxCompletionLength: number;
  temperature: number;
  topP?: number;
  topK?: number;
}

export interface RemoteCompletion {
  /** The prompt's index in the request. */
  prompt: number;
  ids: number[];
  /** Each token's log-probability at the sampling temperature under the policy version that sampled it. */
  logps: number[];
  stopReason: StopReason;
}

export interface RolloutReply {
  id: number;
  /** The policy version the worker sampled with. */
  version: number;
  completions: RemoteCompletion[];
  seconds: number;
}

export interface WeightUpdate {
  version: number;
  /** The arena's layout (ParamArena.signature): names and shapes, which must equal the worker's. */
  layout: string;
  values: Float32Array;
}

const STOPS: readonly StopReason[] = ['length', 'eos', 'stop', 'callback'];

export function encodeSample(r: SampleRequest): Uint8Array {
  const { prompts, ...head } = r;
  return encodeMessage({ ...head, lengths: prompts.map((p) => p.length) }, [Int32Array.from(prompts.flat())]);
}

export function decodeSample(payload: Uint8Array, from: string, vocabSize: number): SampleRequest {
  const { head, sections } = decodeMessage(payload, from);
  const h = new HeadReader(head, `sampling request from ${from}`);
  const lengths = h.ints('lengths', 1);
  const seeds = h.ints('seeds', 0, 2 ** 32 - 1);
  if (seeds.length !== lengths.length) throw new ProtocolError(`sampling request from ${from}: ${seeds.length} seeds for ${lengths.length} prompts`);
  const ids = one(sections, 'i32', from, 'sampling request');
  if (ids.length !== lengths.reduce((n, l) => n + l, 0)) throw new ProtocolError(`sampling request from ${from}: ${ids.length} token ids for prompts of ${lengths.join('+')}`);
  const bad = ids.findIndex((id) => id < 0 || id >= vocabSize);
  if (bad >= 0) throw new ProtocolError(`sampling request from ${from}: token id ${ids[bad]} outside the vocabulary of ${vocabSize}`);
  const topK = h.optionalNumber('topK', 0, 2 ** 31);
  if (topK !== undefined && !Number.isInteger(topK)) throw new ProtocolError(`sampling request from ${from}: topK ${topK} is not an integer`);
  return {
    id: h.int('id'), prompts: split(ids, lengths), seeds, generations: h.int('generations', 1, 4096),
    maxCompletionLength: h.int('maxCompletionLength', 1, 2 ** 20), temperature: h.number('temperature', 1e-6, 1e6),
    topP: h.optionalNumber('topP', 0, 1), topK,
  };
}

export function encodeRollouts(r: RolloutReply): Uint8Array {
  const c = r.completions;
  return encodeMessage(
    { id: r.id, version: r.version, seconds: r.seconds, prompts: c.map((x) => x.prompt), lengths: c.map((x) => x.ids.length), stops: c.map((x) => x.stopReason) },
    [Int32Array.from(c.flatMap((x) => x.ids)), Float32Array.from(c.flatMap((x) => x.logps))],
  );
}

/** A worker's rollouts for `request`: one completion per prompt × G, each token's log-probability finite and ≤ 0. */
export function decodeRollouts(payload: Uint8Array, from: string, request: SampleRequest, vocabSize: number): RolloutReply {
  const { head, sections } = decodeMessage(payload, from);
  const what = `rollouts from ${from}`;
  const h = new HeadReader(head, what);
  const prompts = h.ints('prompts', 0, request.prompts.length - 1);
  const lengths = h.ints('lengths', 0, request.maxCompletionLength);
  const stops = h.strings('stops');
  const want = request.prompts.length * request.generations;
  if (prompts.length !== want || lengths.length !== want || stops.length !== want) throw new ProtocolError(`${what}: ${prompts.length} completions, asked for ${want}`);
  if (prompts.some((p, i) => p !== Math.floor(i / request.generations))) throw new ProtocolError(`${what}: completions out of prompt order`);
  const badStop = stops.find((s) => !STOPS.includes(s as StopReason));
  if (badStop !== undefined) throw new ProtocolError(`${what}: unknown stop reason ${JSON.stringify(badStop).slice(0, 40)}`);
  if (sections.length !== 2 || !(sections[0] instanceof Int32Array) || !(sections[1] instanceof Float32Array)) throw new ProtocolError(`${what}: expected token ids (int32) and log-probabilities (float32)`);
  const [ids, logps] = sections as [Int32Array, Float32Array];
  const total = lengths.reduce((n, l) => n + l, 0);
  if (ids.length !== total || logps.length !== total) throw new ProtocolError(`${what}: ${ids.length} ids and ${logps.length} log-probabilities for ${total} tokens`);
  const badId = ids.findIndex((id) => id < 0 || id >= vocabSize);
  if (badId >= 0) throw new ProtocolError(`${what}: token id ${ids[badId]} outside the vocabulary of ${vocabSize}`);
  const badLogp = logps.findIndex((l) => !Number.isFinite(l) || l > 1e-4);
  if (badLogp >= 0) throw new ProtocolError(`${what}: log-probability ${logps[badLogp]} at token ${badLogp} is not a finite number ≤ 0`);
  const idRows = split(ids, lengths);
  const logpRows = split(logps, lengths);
  return {
    id: h.int('id'), version: h.int('version'), seconds: h.number('seconds', 0, 1e9),
    completions: idRows.map((row, i) => ({ prompt: prompts[i], ids: row, logps: logpRows[i], stopReason: stops[i] as StopReason })),
  };
}

export function encodeWeights(w: WeightUpdate): Uint8Array {
  return encodeMessage({ version: w.version, layout: w.layout }, [w.values]);
}

/** A weight update, refused unless its layout and size equal the worker's own arena's. */
export function decodeWeights(payload: Uint8Array, from: string, layout: string, size: number): WeightUpdate {
  const { head, sections } = decodeMessage(payload, from);
  const h = new HeadReader(head, `weights from ${from}`);
  const theirs = h.string('layout', 1 << 24);
  if (theirs !== layout) throw new ProtocolError(`weights from ${from}: another layout of trainable parameters than this worker's (a different --model or LoRA shape?)`);
  const values = one(sections, 'f32', from, 'weights') as Float32Array;
  if (values.length !== size) throw new ProtocolError(`weights from ${from}: ${values.length} values, this worker trains ${size}`);
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new ProtocolError(`weights from ${from}: value ${bad} is ${values[bad]}`);
  return { version: h.int('version'), layout: theirs, values };
}

/** A delta onto the weights of version `base` (weight_delta.ts), giving version `version`. */
export interface WeightDeltaUpdate {
  version: number;
  base: number;
  layout: string;
  delta: WeightDelta;
}

export function encodeWeightDelta(u: WeightDeltaUpdate): Uint8Array {
  const d = u.delta;
  return encodeMessage(
    { version: u.version, base: u.base, layout: u.layout, words: d.words, changes: d.low.length, escapes: d.escapeAt.length },
    [asInt32(d.changed), packed16(d.low), asInt32(d.escapeAt), packed16(d.escapeHigh)],
  );
}

/** A weight delta, refused unless its layout and size are the worker's and its sections are as long as its head says. */
export function decodeWeightDelta(payload: Uint8Array, from: string, layout: string, size: number): WeightDeltaUpdate {
  const { head, sections } = decodeMessage(payload, from);
  const what = `weight delta from ${from}`;
  const h = new HeadReader(head, what);
  if (h.string('layout', 1 << 24) !== layout) throw new ProtocolError(`${what}: another layout of trainable parameters than this worker's (a different --model or LoRA shape?)`);
  const words = h.int('words', 0, 2 ** 31 - 1);
  if (words !== size) throw new ProtocolError(`${what}: ${words} values, this worker trains ${size}`);
  const changes = h.int('changes', 0, words);
  const escapes = h.int('escapes', 0, changes);
  const want = [Math.ceil(words / 32), Math.ceil(changes / 2), escapes, Math.ceil(escapes / 2)];
  if (sections.length !== 4 || sections.some((x, i) => !(x instanceof Int32Array) || x.length !== want[i])) {
    throw new ProtocolError(`${what}: expected int32 sections of ${want.join(', ')} words, got ${sections.map((x) => x.length).join(', ')}`);
  }
  const [changed, low, escapeAt, escapeHigh] = sections as Int32Array[];
  const delta: WeightDelta = {
    words, changed: new Uint32Array(changed.buffer, changed.byteOffset, changed.length), low: new Uint16Array(low.buffer, low.byteOffset, changes),
    escapeAt: new Uint32Array(escapeAt.buffer, escapeAt.byteOffset, escapes), escapeHigh: new Uint16Array(escapeHigh.buffer, escapeHigh.byteOffset, escapes),
  };
  return { version: h.int('version'), base: h.int('base'), layout, delta };
}

function asInt32(x: Uint32Array): Int32Array {
  return new Int32Array(x.buffer, x.byteOffset, x.length);
}

/** 16-bit values two to an int32 word (the wire's sections are 32-bit), the last padded with zero. */
function packed16(x: Uint16Array): Int32Array {
  const out = new Int32Array(Math.ceil(x.length / 2));
  new Uint16Array(out.buffer).set(x);
  return out;
}

function one(sections: readonly (Int32Array | Float32Array)[], type: 'i32' | 'f32', from: string, what: string): Int32Array | Float32Array {
  const ok = sections.length === 1 && (type === 'i32' ? sections[0] instanceof Int32Array : sections[0] instanceof Float32Array);
  if (!ok) throw new ProtocolError(`${what} from ${from}: expected one ${type} section, got ${sections.length}`);
  return sections[0];
}

function split(values: Int32Array | Float32Array, lengths: readonly number[]): number[][] {
  const out: number[][] = [];
  let at = 0;
  for (const l of lengths) {
    out.push(Array.from(values.subarray(at, at + l)));
    at += l;
  }
  return out;
}
