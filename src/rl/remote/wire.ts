/**
 * The rollout protocol's messages (docs/RL.md, "Rollout workers"). They travel as DATA frames of
 * the comm layer over an authenticated connection (link.ts); the frame's tag says which message.
 * A payload is a small JSON head (numbers and names only: never evaluated, validated field by
 * field) followed by binary sections, raw little-endian int32 (token ids) or float32 (weights,
 * log-probabilities), each 4-byte aligned:
 *
 *   u32 headBytes | head (UTF-8 JSON) | zero padding to 4 | section 0 | section 1 | ...
 *
 * The head lists each section's type and element count; a payload whose sections do not add up
 * to its length exactly is refused.
 */
import { ProtocolError } from '../../util/errors.js';

export enum RolloutMessage {
  /** worker → trainer, once connected: its pid and the policy version it holds. */
  Hello = 1,
  /** trainer → worker: the trainable weights (the adapters under LoRA) and their version. */
  Weights = 2,
  /** trainer → worker: sample G completions of each prompt. */
  Sample = 3,
  /** worker → trainer: the completions, each token's log-probability, the version that sampled them. */
  Rollouts = 4,
  /** worker → trainer: a request it could not serve, and why. */
  Failed = 5,
  /** trainer → worker: the weights of a version as a lossless delta onto the one before (weight_delta.ts). */
  WeightDelta = 6,
}

export type SectionType = 'i32' | 'f32';
type Section = Int32Array | Float32Array;

export interface Decoded {
  head: Record<string, unknown>;
  sections: Section[];
}

/** One message's payload: the head (JSON) and its sections. */
export function encodeMessage(head: Record<string, unknown>, sections: readonly Section[] = []): Uint8Array {
  const described = { ...head, sections: sections.map((s) => [s instanceof Int32Array ? 'i32' : 'f32', s.length]) };
  const json = new TextEncoder().encode(JSON.stringify(described));
  const headEnd = align4(4 + json.length);
  const out = new Uint8Array(headEnd + sections.reduce((n, s) => n + s.byteLength, 0));
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  let at = headEnd;
  for (const s of sections) {
    out.set(new Uint8Array(s.buffer, s.byteOffset, s.byteLength), at);
    at += s.byteLength;
  }
  return out;
}

/** Reads a payload back; anything malformed throws a ProtocolError naming `from`. */
export function decodeMessage(payload: Uint8Array, from: string): Decoded {
  const bad = (why: string): ProtocolError => new ProtocolError(`rollout message from ${from}: ${why}`);
  if (payload.length < 4) throw bad(`${payload.length} bytes, too short for a head`);
  const headBytes = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0, true);
  if (4 + headBytes > payload.length) throw bad(`a head of ${headBytes} bytes passes the ${payload.length}-byte payload`);
  let head: unknown;
  try {
    head = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload.subarray(4, 4 + headBytes)));
  } catch (err) {
    throw bad(`its head is not JSON (${(err as Error).message})`);
  }
  if (typeof head !== 'object' || head === null || Array.isArray(head)) throw bad('its head is not an object');
  const described = (head as Record<string, unknown>).sections;
  if (!Array.isArray(described)) throw bad('its head lists no sections');
  let at = align4(4 + headBytes);
  const sections: Section[] = [];
  for (const d of described) {
    if (!Array.isArray(d) || (d[0] !== 'i32' && d[0] !== 'f32') || !isCount(d[1])) throw bad(`section ${sections.length} is described as ${JSON.stringify(d)}`);
    const bytes = (d[1] as number) * 4;
    if (at + bytes > payload.length) throw bad(`section ${sections.length} (${d[1]} values) passes the payload's end`);
    // A copy: the frame's buffer is not ours to keep, and the copy is aligned.
    const copy = payload.slice(at, at + bytes);
    sections.push(d[0] === 'i32' ? new Int32Array(copy.buffer) : new Float32Array(copy.buffer));
    at += bytes;
  }
  if (at !== payload.length) throw bad(`${payload.length - at} bytes after its last section`);
  return { head: head as Record<string, unknown>, sections };
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function isCount(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 31;
}

/** Field readers for a decoded head: each names the message and the field it refuses. */
export class HeadReader {
  constructor(private readonly head: Record<string, unknown>, private readonly what: string) {}

  int(field: string, min = 0, max = 2 ** 53): number {
    const v = this.head[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw this.bad(field, `an integer in [${min}, ${max}]`);
    return v;
  }

  number(field: string, min: number, max: number): number {
    const v = this.head[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw this.bad(field, `a number in [${min}, ${max}]`);
    return v;
  }

  optionalNumber(field: string, min: number, max: number): number | undefined {
    return this.head[field] === undefined || this.head[field] === null ? undefined : this.number(field, min, max);
  }

  string(field: string, maxLength = 4096): string {
    const v = this.head[field];
    if (typeof v !== 'string' || v.length > maxLength) throw this.bad(field, `a text of at most ${maxLength} characters`);
    return v;
  }

  ints(field: string, min = 0, max = 2 ** 31 - 1): number[] {
    const v = this.head[field];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max)) throw this.bad(field, `a list of integers in [${min}, ${max}]`);
    return v as number[];
  }

  strings(field: string): string[] {
    const v = this.head[field];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw this.bad(field, 'a list of texts');
    return v as string[];
  }

  private bad(field: string, expected: string): ProtocolError {
    return new ProtocolError(`${this.what}: field "${field}" must be ${expected}, got ${JSON.stringify(this.head[field])?.slice(0, 80)}`);
  }
}
