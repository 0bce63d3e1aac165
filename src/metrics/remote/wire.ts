/**
 * The metric stream's messages (every rank → rank 0, over the cluster's own authenticated
 * connections: DATA frames on one reserved tag, never a second connection or RPC stack).
 *
 *   rank 0 → rank k   `{"t":"sink","nonce":N}` once: rank 0 collects. Rank k compares N with the
 *                      marker rank 0 left in its folder (SINK_FILE): the same folder (one host, or
 *                      a shared file system) already holds k's lines, so k says "local" and stops.
 *   rank k → rank 0   `{"t":"local"}` once, or batches: a header line
 *                      `{"t":"batch","dropped":D,"end":E}` then one line per record, "m" + a
 *                      metrics.jsonl line or "e" + an events.jsonl line. `dropped` is the count of
 *                      records the sender's bounded queue threw away so far; `end` closes the stream.
 *
 * Payloads are UTF-8 text (JSON lines; nothing evaluates code). Rank 0 checks every line: JSON
 * objects only, at most MAX_BATCH_BYTES per message, and a record naming a rank must name its
 * sender's.
 */
import { P2P_SEQ_BASE } from '../../comm/collectives/sendrecv.js';

/**
 * The stream's tag: in the point-to-point range (collectives never use it) with a user tag that
 * the strategies' point-to-point messages never take (theirs are small integers).
 */
export const STREAM_USER_TAG = 0xffff_ff00;
export const STREAM_TAG = P2P_SEQ_BASE * 0x1_0000_0000 + STREAM_USER_TAG;

/** Left by rank 0 in its run folder; its content is the run's sink nonce. */
export const SINK_FILE = '.metric-sink';

/** A sender closes a batch at this size; rank 0 refuses bigger messages. */
export const BATCH_BYTES = 64 << 10;
export const MAX_BATCH_BYTES = 1 << 20;

export type RecordKind = 'm' | 'e';

export type StreamMessage =
  | { t: 'sink'; nonce: string }
  | { t: 'local' }
  | { t: 'batch'; dropped: number; end: boolean; lines: Array<{ kind: RecordKind; line: string }> };

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export function encodeSink(nonce: string): Uint8Array {
  return enc.encode(JSON.stringify({ t: 'sink', nonce }));
}

export function encodeLocal(): Uint8Array {
  return enc.encode(JSON.stringify({ t: 'local' }));
}

/** `lines` are already prefixed with their kind ("m{...}" / "e{...}"). */
export function encodeBatch(lines: string[], dropped: number, end: boolean): Uint8Array {
  return enc.encode([JSON.stringify({ t: 'batch', dropped, end }), ...lines].join('\n'));
}

/** Parses one message; throws an Error saying what is wrong (the caller names the peer). */
export function decodeMessage(bytes: Uint8Array): StreamMessage {
  if (bytes.length > MAX_BATCH_BYTES) throw new Error(`message of ${bytes.length} bytes is over the ${MAX_BATCH_BYTES}-byte limit`);
  let text: string;
  try {
    text = dec.decode(bytes);
  } catch {
    throw new Error('message is not UTF-8');
  }
  const nl = text.indexOf('\n');
  const head = parseObject(nl < 0 ? text : text.slice(0, nl), 'header');
  if (head.t === 'sink' && typeof head.nonce === 'string') return { t: 'sink', nonce: head.nonce };
  if (head.t === 'local') return { t: 'local' };
  if (head.t !== 'batch' || !Number.isSafeInteger(head.dropped) || (head.dropped as number) < 0 || typeof head.end !== 'boolean') {
    throw new Error(`bad header ${JSON.stringify(head).slice(0, 80)}`);
  }
  const lines = nl < 0 ? [] : text.slice(nl + 1).split('\n').filter((l) => l !== '').map((l) => {
    const kind = l[0];
    if (kind !== 'm' && kind !== 'e') throw new Error(`record of unknown kind '${kind}'`);
    return { kind: kind as RecordKind, line: l.slice(1) };
  });
  return { t: 'batch', dropped: head.dropped as number, end: head.end, lines };
}

/** A record line as an object: JSON, an object, and (if it names a rank) the sender's rank. */
export function checkRecord(line: string, sender: number): Record<string, unknown> {
  const r = parseObject(line, 'record');
  if ('rank' in r && r.rank !== sender) throw new Error(`a record of rank ${String(r.rank)} on rank ${sender}'s stream`);
  return r;
}

function parseObject(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`${what} is not JSON: ${text.slice(0, 60)}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}
