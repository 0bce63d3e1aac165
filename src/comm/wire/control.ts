/**
 * Payloads of the handshake and control frames. They are small JSON objects (tensors never are):
 * parsed with JSON.parse only, then checked field by field before anything uses them.
 */
import { ProtocolError } from '../../util/errors.js';

/** What a connection is for: a data-plane link between ranks, a client of the rendezvous store, or a cluster job link (coordinator, compute node, client). */
export type Purpose = 'data' | 'store' | 'cluster';

export interface Hello {
  protocol: number;
  purpose: Purpose;
  worldSize: number;
  /** The sender's rank; -1 means "not a rank" (the store) or "assign me one" (a store client). */
  rank: number;
  /** Opaque to comm: peers must agree on it exactly (e.g. a hash of the model's shapes). */
  signature: string;
  /** Fresh random hex string; both nonces enter the HMAC so a proof is never valid twice. */
  nonce: string;
}

export interface Ready {
  rank: number;
}

export interface Refusal {
  code: string;
  message: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function encodeJson(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

function parseObject(payload: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(payload));
  } catch {
    throw new ProtocolError(`malformed ${what} payload (not UTF-8 JSON)`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ProtocolError(`malformed ${what}: not an object`);
  return value as Record<string, unknown>;
}

function int(o: Record<string, unknown>, key: string, what: string, min: number): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 0x7fffffff) throw new ProtocolError(`malformed ${what}: bad ${key}`);
  return v;
}

function str(o: Record<string, unknown>, key: string, what: string, maxLen: number): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length > maxLen) throw new ProtocolError(`malformed ${what}: bad ${key}`);
  return v;
}

export function decodeHello(payload: Uint8Array): Hello {
  const o = parseObject(payload, 'hello');
  const purpose = o.purpose;
  if (purpose !== 'data' && purpose !== 'store' && purpose !== 'cluster') throw new ProtocolError('malformed hello: bad purpose');
  const nonce = str(o, 'nonce', 'hello', 128);
  if (!/^[0-9a-f]{32,128}$/.test(nonce)) throw new ProtocolError('malformed hello: bad nonce');
  return {
    protocol: int(o, 'protocol', 'hello', 0),
    purpose,
    worldSize: int(o, 'worldSize', 'hello', 0),
    rank: int(o, 'rank', 'hello', -1),
    signature: str(o, 'signature', 'hello', 4096),
    nonce,
  };
}

export function decodeReady(payload: Uint8Array): Ready {
  return { rank: int(parseObject(payload, 'ready'), 'rank', 'ready', 0) };
}

export function decodeRefusal(payload: Uint8Array): Refusal {
  const o = parseObject(payload, 'error');
  return { code: str(o, 'code', 'error', 64), message: str(o, 'message', 'error', 4096) };
}
