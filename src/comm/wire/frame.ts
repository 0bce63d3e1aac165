/**
 * The frame: a fixed 24-byte little-endian header followed by `length` payload bytes.
 *
 *   offset size field
 *   0      4    magic    "SMCL" (bytes 53 4D 43 4C)
 *   4      2    version  protocol version (PROTOCOL_VERSION)
 *   6      1    type     MessageType
 *   7      1    flags    reserved, must be 0
 *   8      4    rank     sender rank, int32 (-1: not a rank, e.g. the store)
 *   12     4    seq      high word of the message tag (collectives: the op's sequence number)
 *   16     4    tag      low word of the message tag (collectives: the message index in the op)
 *   20     4    length   payload bytes, uint32, checked against per-type limits before any read
 *
 * 24 is a multiple of 8, so a payload that follows a header at an aligned offset is itself aligned
 * and can be viewed as a Float32Array without a copy. docs/PROTOCOL.md is the long form of this.
 */
import { ProtocolError } from '../../util/errors.js';

export const PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 24;
export const MAGIC = 0x4c434d53; // "SMCL" read as a little-endian uint32

export enum MessageType {
  Hello = 1,
  Auth = 2,
  Ready = 3,
  Error = 4,
  Data = 5,
  Bye = 6,
  StoreRequest = 7,
  StoreResponse = 8,
  /** Cluster jobs (src/cluster): a compute node announces itself and its listening port. */
  Register = 9,
  /** Compute node → coordinator, periodically: "still alive", with its tasks in flight. */
  Heartbeat = 10,
  /** Coordinator → compute node: one task (global weights and a data shard). */
  Task = 11,
  /** Compute node → coordinator: a task's weight delta, or its rejection. */
  TaskResult = 12,
  /** Client → coordinator: a job (hyper-parameters and its data). */
  JobSubmit = 13,
  /** Coordinator → client: the job's progress (queued, each round) and its end. */
  JobUpdate = 14,
}

export interface FrameHeader {
  version: number;
  type: MessageType;
  rank: number;
  seq: number;
  tag: number;
  length: number;
}

export interface FrameLimits {
  /** Largest DATA payload accepted (bytes). */
  maxData: number;
  /** Largest store request/response payload (bytes). */
  maxStore: number;
  /** Largest handshake/control payload (bytes). */
  maxControl: number;
  /** Largest cluster-job payload: tasks, results, submitted jobs (bytes). */
  maxJob?: number;
}

export const DEFAULT_LIMITS: FrameLimits = {
  maxData: 1 << 30,
  maxStore: 16 << 20,
  maxControl: 64 << 10,
  maxJob: 32 << 20,
};

/** Message types that carry cluster-job messages (src/cluster/messages.ts). */
export const JOB_TYPES: ReadonlySet<MessageType> = new Set([MessageType.Register, MessageType.Heartbeat, MessageType.Task, MessageType.TaskResult, MessageType.JobSubmit, MessageType.JobUpdate]);

/** The peer's frames carry another protocol version: the handshake reports it by name. */
export class VersionMismatchError extends ProtocolError {
  constructor(
    readonly peerVersion: number,
    readonly ourVersion: number,
  ) {
    super(`protocol version mismatch: peer speaks v${peerVersion}, this node speaks v${ourVersion}`);
  }
}

/** Writes a header at `offset` of `out` (which must have HEADER_BYTES of room). */
export function writeHeader(out: Uint8Array, offset: number, h: FrameHeader): void {
  const v = new DataView(out.buffer, out.byteOffset + offset, HEADER_BYTES);
  v.setUint32(0, MAGIC, true);
  v.setUint16(4, h.version, true);
  v.setUint8(6, h.type);
  v.setUint8(7, 0);
  v.setInt32(8, h.rank, true);
  v.setUint32(12, h.seq, true);
  v.setUint32(16, h.tag, true);
  v.setUint32(20, h.length, true);
}

/** Reads and validates a header; throws ProtocolError before anything trusts its fields. */
export function readHeader(buf: Uint8Array, offset: number, ourVersion: number, limits: FrameLimits): FrameHeader {
  const v = new DataView(buf.buffer, buf.byteOffset + offset, HEADER_BYTES);
  const magic = v.getUint32(0, true);
  if (magic !== MAGIC) throw new ProtocolError(`bad frame magic 0x${magic.toString(16).padStart(8, '0')} (not a smolcluster peer?)`);
  const version = v.getUint16(4, true);
  if (version !== ourVersion) throw new VersionMismatchError(version, ourVersion);
  const type = v.getUint8(6);
  if (!(type in MessageType)) throw new ProtocolError(`unknown message type ${type}`);
  if (v.getUint8(7) !== 0) throw new ProtocolError(`reserved flags set (0x${v.getUint8(7).toString(16)})`);
  const length = v.getUint32(20, true);
  const limit = limitFor(type, limits);
  if (length > limit) throw new ProtocolError(`oversize ${MessageType[type]} frame: ${length} bytes > limit ${limit}`);
  return { version, type, rank: v.getInt32(8, true), seq: v.getUint32(12, true), tag: v.getUint32(16, true), length };
}

function limitFor(type: MessageType, limits: FrameLimits): number {
  if (type === MessageType.Data) return limits.maxData;
  if (type === MessageType.StoreRequest || type === MessageType.StoreResponse) return limits.maxStore;
  if (JOB_TYPES.has(type)) return limits.maxJob ?? DEFAULT_LIMITS.maxJob!;
  return limits.maxControl;
}

/** One buffer holding header and payload: for small and control frames (one write, no writev). */
export function encodeFrame(h: Omit<FrameHeader, 'length'>, payload?: Uint8Array): Buffer {
  const length = payload ? payload.byteLength : 0;
  const out = Buffer.allocUnsafe(HEADER_BYTES + length);
  writeHeader(out, 0, { ...h, length });
  if (payload) out.set(payload, HEADER_BYTES);
  return out;
}

/** Splits an API tag (0 <= tag < 2^53) into the header's seq and tag words. */
export function splitTag(tag: number): { seq: number; tag: number } {
  return { seq: Math.floor(tag / 0x1_0000_0000), tag: tag >>> 0 };
}

export function joinTag(seq: number, tag: number): number {
  return seq * 0x1_0000_0000 + tag;
}
