/**
 * Store messages: STORE_REQUEST / STORE_RESPONSE frames whose tag is the request id. The payload is
 * a small JSON head followed by raw value bytes (values are opaque bytes, never parsed):
 *
 *   uint32 LE head length | head (UTF-8 JSON) | value bytes
 */
import { ProtocolError, TimeoutError } from '../../util/errors.js';

export type StoreOp = 'set' | 'get' | 'wait' | 'add' | 'compareSet' | 'delete';
const OPS: readonly StoreOp[] = ['set', 'get', 'wait', 'add', 'compareSet', 'delete'];

export interface StoreRequest {
  op: StoreOp;
  keys: string[];
  /** add: the increment. */
  delta?: number;
  /** get/wait: how long the server may hold the request. */
  timeoutMs?: number;
  /** compareSet: byte length of the expected value at the start of the value bytes, or -1 for "absent". */
  expectedLength?: number;
}

export interface StoreResponse {
  ok: boolean;
  /** add: the new counter value. */
  num?: number;
  /** Error fields when !ok. */
  code?: string;
  message?: string;
  /** wait/get timeouts: the keys still missing. */
  missing?: string[];
}

/** A store wait that expired; `missing` lists the keys that never appeared. */
export class StoreTimeoutError extends TimeoutError {
  constructor(
    op: string,
    waitedMs: number,
    readonly missing: string[],
  ) {
    super(op, [], waitedMs, `missing keys: ${missing.join(', ')}`);
  }
}

export function encodeMessage(head: object, value?: Uint8Array): Uint8Array {
  const json = Buffer.from(JSON.stringify(head), 'utf8');
  const out = Buffer.allocUnsafe(4 + json.length + (value?.length ?? 0));
  out.writeUInt32LE(json.length, 0);
  json.copy(out, 4);
  if (value) out.set(value, 4 + json.length);
  return out;
}

function decodeMessage(payload: Uint8Array): { head: Record<string, unknown>; value: Uint8Array } {
  if (payload.length < 4) throw new ProtocolError('malformed store message: too short');
  const len = Buffer.from(payload.buffer, payload.byteOffset, payload.length).readUInt32LE(0);
  if (len > payload.length - 4) throw new ProtocolError('malformed store message: head length exceeds payload');
  let head: unknown;
  try {
    head = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset + 4, len).toString('utf8'));
  } catch {
    throw new ProtocolError('malformed store message: head is not JSON');
  }
  if (typeof head !== 'object' || head === null || Array.isArray(head)) throw new ProtocolError('malformed store message: head is not an object');
  return { head: head as Record<string, unknown>, value: payload.subarray(4 + len) };
}

export function decodeRequest(payload: Uint8Array): { req: StoreRequest; value: Uint8Array } {
  const { head, value } = decodeMessage(payload);
  const op = head.op as StoreOp;
  if (!OPS.includes(op)) throw new ProtocolError(`malformed store request: unknown op ${String(head.op)}`);
  const keys = head.keys;
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > 4096 || !keys.every((k) => typeof k === 'string' && k.length <= 1024)) {
    throw new ProtocolError('malformed store request: bad keys');
  }
  const num = (k: string): number | undefined => {
    const v = head[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ProtocolError(`malformed store request: bad ${k}`);
    return v;
  };
  return { req: { op, keys: keys as string[], delta: num('delta'), timeoutMs: num('timeoutMs'), expectedLength: num('expectedLength') }, value };
}

export function decodeResponse(payload: Uint8Array): { res: StoreResponse; value: Uint8Array } {
  const { head, value } = decodeMessage(payload);
  if (typeof head.ok !== 'boolean') throw new ProtocolError('malformed store response: no ok field');
  return { res: head as unknown as StoreResponse, value };
}
