/**
 * The messages of pipelined generation, on the cluster's transport (comm/): activations go from
 * stage s to s + 1 (never logits: the last stage samples), the chosen tokens from the last stage
 * back to the driver (stage 0), and a stage's failure to the driver. One (peer, tag) pair is FIFO,
 * so a stage handles its predecessor's messages in the order they were sent.
 *
 * A pass: Int32 [kind, group, N, T, width, metaBytes], the N row ids, metaBytes of JSON (a
 * prefill: each row's prompt ids and sampling options, for the last stage's twin of its sequence)
 * padded to 4 bytes, then N·T·width float32 activations (none in a 'leave').
 * Tokens: Int32 [group, N], the N row ids, the N tokens.
 */
import { TAG_HI, WORLD_HI_WORDS } from '../../comm/tag_space.js';

/** High words no collective or point-to-point counter of the world group reaches (the last split region's end). */
const BASE = (WORLD_HI_WORDS - 1) * TAG_HI;
export const PASS_TAG = BASE + 1;
export const TOKENS_TAG = BASE + 2;
export const FAILURE_TAG = BASE + 3;

export type PassKind = 'prefill' | 'decode' | 'leave' | 'stop';
const KINDS: PassKind[] = ['prefill', 'decode', 'leave', 'stop'];

/** What the last stage needs to sample a row as one process would: its prompt and its sampling options. */
export interface RowSampling {
  promptIds: number[];
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  logitBias?: [number, number][];
  seed?: number;
}

export interface Pass {
  kind: PassKind;
  group: number;
  rows: number[];
  /** Positions per row (1 at decode). */
  T: number;
  width: number;
  sampling?: RowSampling[];
  activations?: Float32Array;
}

const HEADER = 6;

export function encodePass(p: Pass): Uint8Array {
  const meta = p.sampling ? new TextEncoder().encode(JSON.stringify(p.sampling)) : new Uint8Array(0);
  const metaWords = Math.ceil(meta.length / 4);
  const floats = p.activations?.length ?? 0;
  const out = new Uint8Array(4 * (HEADER + p.rows.length + metaWords + floats));
  const ints = new Int32Array(out.buffer, 0, HEADER + p.rows.length);
  ints.set([KINDS.indexOf(p.kind), p.group, p.rows.length, p.T, p.width, meta.length]);
  ints.set(p.rows, HEADER);
  out.set(meta, 4 * (HEADER + p.rows.length));
  if (p.activations) new Float32Array(out.buffer, 4 * (HEADER + p.rows.length + metaWords), floats).set(p.activations);
  return out;
}

export function decodePass(bytes: Uint8Array): Pass {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  const words = new Int32Array(aligned.buffer, aligned.byteOffset, Math.floor(aligned.byteLength / 4));
  const [kind, group, N, T, width, metaBytes] = words;
  if (!(kind in KINDS) || N < 0 || words.length < HEADER + N) throw new Error(`pipeline: a malformed stage message (kind ${kind}, ${N} rows, ${bytes.byteLength} bytes)`);
  const rows = Array.from(words.subarray(HEADER, HEADER + N));
  const metaAt = 4 * (HEADER + N);
  const sampling = metaBytes > 0 ? JSON.parse(new TextDecoder().decode(aligned.subarray(metaAt, metaAt + metaBytes))) as RowSampling[] : undefined;
  const floatsAt = metaAt + 4 * Math.ceil(metaBytes / 4);
  const floats = (aligned.byteLength - floatsAt) / 4;
  if (floats !== (KINDS[kind] === 'prefill' || KINDS[kind] === 'decode' ? N * T * width : 0)) {
    throw new Error(`pipeline: a ${KINDS[kind]} message of ${N} rows × ${T} × ${width} carries ${floats} floats`);
  }
  const activations = floats > 0 ? new Float32Array(aligned.buffer, aligned.byteOffset + floatsAt, floats) : undefined;
  return { kind: KINDS[kind], group, rows, T, width, sampling, activations };
}

export function encodeTokens(group: number, rows: readonly number[], tokens: readonly number[]): Uint8Array {
  const ints = Int32Array.from([group, rows.length, ...rows, ...tokens]);
  return new Uint8Array(ints.buffer);
}

export function decodeTokens(bytes: Uint8Array): { group: number; rows: number[]; tokens: number[] } {
  const ints = new Int32Array(bytes.slice().buffer);
  const [group, N] = ints;
  if (ints.length !== 2 + 2 * N) throw new Error(`pipeline: a malformed tokens message (${bytes.byteLength} bytes for ${N} rows)`);
  return { group, rows: Array.from(ints.subarray(2, 2 + N)), tokens: Array.from(ints.subarray(2 + N)) };
}
