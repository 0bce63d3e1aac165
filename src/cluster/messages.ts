/**
 * Payloads of the cluster-job frames (message types 9–14, docs/PROTOCOL.md): a small JSON head and
 * a raw little-endian float32 tail (weights, deltas, data shards — never JSON arrays).
 *
 *   offset 0: uint32 head length L (a multiple of 4, so the floats start aligned)
 *   offset 4: L bytes of UTF-8 JSON head (space-padded)
 *   offset 4+L: float32 values to the end
 *
 * Every decoder checks each field and the float count before anything uses them; a bad message
 * throws ProtocolError, which drops that one connection.
 */
import { PRECISIONS, type Precision } from '../tensor/precision.js';
import { ProtocolError } from '../util/errors.js';

export interface Register {
  /** The port the node listens on for tasks (with the address it connected from). */
  port: number;
  loadProbability: number;
}

/** Where a compute node trains its tasks (its --device, resolved at start): a property of the node, never of a job. */
export const NODE_DEVICES = ['cpu', 'webgpu'] as const;
export type NodeDevice = (typeof NODE_DEVICES)[number];

export interface Heartbeat {
  inFlight: number;
  /** The node's device (absent from a node older than the field: cpu). */
  device?: NodeDevice;
}

export interface TaskHead {
  job: number;
  round: number;
  task: number;
  shard: string;
  rows: number;
  epochs: number;
  lr: number;
  hidden: number;
  /** A busy node may reject this task (least-loaded policy) instead of delaying it. */
  allowReject: boolean;
  /** The compute precision the node trains in (the job's; absent: fp32). */
  precision?: Precision;
}

export interface Task extends TaskHead {
  weights: Float32Array;
  features: Float32Array;
  labels: Int32Array;
}

export interface TaskResultHead {
  job: number;
  round: number;
  task: number;
  status: 'done' | 'rejected';
  trainError: number;
  trainLoss: number;
  epochs: number;
  /** Time on the node from receipt to reply (busy delay included). */
  ms: number;
  /** The node was busy for this task (it delayed or rejected it). */
  busy: boolean;
  /** Where the node trained the task (absent: cpu). */
  device?: NodeDevice;
  /** Why a node refused a task it could not train (a bf16 task on a GPU node); absent: it was busy. */
  reason?: string;
}

export interface TaskResult extends TaskResultHead {
  delta: Float32Array;
}

export interface ShardSpec {
  name: string;
  rows: number;
}

export type Weighting = 'equal' | 'samples';

export interface JobSpecHead {
  rounds: number;
  epochs: number;
  hidden: number;
  lr: number;
  seed: number;
  weighting: Weighting;
  /** Every task's compute precision (docs/PRECISION.md; absent: fp32). Never auto: a task's outcome must not depend on where it ran. */
  precision?: Precision;
  shards: ShardSpec[];
  validation: ShardSpec;
}

export interface JobShard extends ShardSpec {
  features: Float32Array;
  labels: Int32Array;
}

export interface JobSpec extends Omit<JobSpecHead, 'shards' | 'validation'> {
  shards: JobShard[];
  validation: JobShard;
}

export interface RoundReport {
  round: number;
  validationError: number;
  /** Mean training error over the round's tasks. */
  trainError: number;
  ms: number;
  tasks: Array<{ task: number; shard: string; node: string; device: NodeDevice; ms: number; attempts: number; trainError: number; epochs: number }>;
}

export type JobUpdate =
  | { state: 'queued'; job: number; ahead: number }
  | { state: 'started'; job: number }
  | ({ state: 'round'; job: number } & RoundReport)
  | { state: 'done'; job: number; validationError: number; ms: number; result?: Record<string, unknown> }
  | { state: 'failed'; job: number; message: string };

const FEATURES = 16;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function encode(head: object, ...tails: ArrayLike<number>[]): Uint8Array {
  let json = Buffer.from(JSON.stringify(head), 'utf8');
  const pad = (4 - (json.length % 4)) % 4;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const floats = tails.reduce((n, t) => n + t.length, 0);
  const out = new Uint8Array(4 + json.length + 4 * floats);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  const body = new Float32Array(out.buffer, 4 + json.length, floats);
  let at = 0;
  for (const t of tails) {
    body.set(t, at);
    at += t.length;
  }
  return out;
}

function split(payload: Uint8Array, what: string): { o: Record<string, unknown>; floats: Float32Array } {
  if (payload.length < 4) throw new ProtocolError(`malformed ${what}: too short`);
  const len = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0, true);
  if (len % 4 !== 0 || len > payload.length - 4 || (payload.length - 4 - len) % 4 !== 0) throw new ProtocolError(`malformed ${what}: bad lengths`);
  let o: unknown;
  try {
    o = JSON.parse(utf8.decode(payload.subarray(4, 4 + len)));
  } catch {
    throw new ProtocolError(`malformed ${what}: head is not UTF-8 JSON`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new ProtocolError(`malformed ${what}: head is not an object`);
  const bytes = payload.slice(4 + len); // own, aligned copy
  return { o: o as Record<string, unknown>, floats: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4) };
}

/** Field readers: each throws a ProtocolError naming the message and the field. */
class Fields {
  constructor(
    private readonly o: Record<string, unknown>,
    private readonly what: string,
  ) {}

  int(key: string, min = 0, max = 0x7fffffff): number {
    const v = this.o[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw this.bad(key);
    return v;
  }

  num(key: string, min = -Infinity, max = Infinity): number {
    const v = this.o[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw this.bad(key);
    return v;
  }

  bool(key: string): boolean {
    const v = this.o[key];
    if (typeof v !== 'boolean') throw this.bad(key);
    return v;
  }

  str(key: string, maxLen = 256): string {
    const v = this.o[key];
    if (typeof v !== 'string' || v.length > maxLen) throw this.bad(key);
    return v;
  }

  oneOf<T extends string>(key: string, values: readonly T[]): T {
    const v = this.o[key];
    if (!values.includes(v as T)) throw this.bad(key);
    return v as T;
  }

  /** One of `values`, or `fallback` when the field is absent (a sender from before the field). */
  optionalOneOf<T extends string>(key: string, values: readonly T[], fallback: T): T {
    return this.o[key] === undefined ? fallback : this.oneOf(key, values);
  }

  shard(key: string): ShardSpec {
    const v = this.o[key];
    if (typeof v !== 'object' || v === null) throw this.bad(key);
    const f = new Fields(v as Record<string, unknown>, `${this.what} ${key}`);
    return { name: f.str('name'), rows: f.int('rows', 1, 10_000_000) };
  }

  shards(key: string): ShardSpec[] {
    const v = this.o[key];
    if (!Array.isArray(v) || v.length === 0 || v.length > 10_000) throw this.bad(key);
    return v.map((_, i) => new Fields({ s: v[i] }, `${this.what} ${key}[${i}]`).shard('s'));
  }

  private bad(key: string): ProtocolError {
    return new ProtocolError(`malformed ${this.what}: bad ${key}`);
  }
}

function expectFloats(floats: Float32Array, n: number, what: string): void {
  if (floats.length !== n) throw new ProtocolError(`malformed ${what}: ${floats.length} values, expected ${n}`);
}

function labelsOf(floats: Float32Array, what: string): Int32Array {
  const out = new Int32Array(floats.length);
  for (let i = 0; i < floats.length; i++) {
    const v = floats[i];
    if (!Number.isInteger(v) || v < 0 || v > 25) throw new ProtocolError(`malformed ${what}: label ${v} at row ${i}`);
    out[i] = v;
  }
  return out;
}

export function decodeRegister(payload: Uint8Array): Register {
  const { o } = split(payload, 'register');
  const f = new Fields(o, 'register');
  return { port: f.int('port', 1, 65535), loadProbability: f.num('loadProbability', 0, 1) };
}

export function decodeHeartbeat(payload: Uint8Array): Heartbeat {
  const f = new Fields(split(payload, 'heartbeat').o, 'heartbeat');
  return { inFlight: f.int('inFlight'), device: f.optionalOneOf('device', NODE_DEVICES, 'cpu') };
}

export function encodeTask(t: Task): Uint8Array {
  const { weights, features, labels, ...head } = t;
  return encode(head, weights, features, labels);
}

/** `params(hidden)` is the weight count the task's model must have. */
export function decodeTask(payload: Uint8Array, params: (hidden: number) => number): Task {
  const { o, floats } = split(payload, 'task');
  const f = new Fields(o, 'task');
  const head: TaskHead = {
    job: f.int('job'),
    round: f.int('round'),
    task: f.int('task'),
    shard: f.str('shard'),
    rows: f.int('rows', 1, 10_000_000),
    epochs: f.int('epochs', 1, 1_000_000),
    lr: f.num('lr', 0, 1e6),
    hidden: f.int('hidden', 1, 100_000),
    allowReject: f.bool('allowReject'),
    precision: f.optionalOneOf('precision', PRECISIONS, 'fp32'),
  };
  const p = params(head.hidden);
  expectFloats(floats, p + head.rows * (FEATURES + 1), 'task');
  return {
    ...head,
    weights: floats.subarray(0, p),
    features: floats.subarray(p, p + head.rows * FEATURES),
    labels: labelsOf(floats.subarray(p + head.rows * FEATURES), 'task'),
  };
}

export function encodeTaskResult(r: TaskResult): Uint8Array {
  const { delta, ...head } = r;
  return encode(head, delta);
}

/**
 * `paramsFor(job)` is the weight count of that job's model, or null for a job that is no longer
 * running (its late result is kept as a head only, for the scheduler to ignore).
 */
export function decodeTaskResult(payload: Uint8Array, paramsFor: (job: number) => number | null): TaskResult {
  const { o, floats: all } = split(payload, 'task result');
  const f = new Fields(o, 'task result');
  const status = f.oneOf('status', ['done', 'rejected'] as const);
  const params = paramsFor(f.int('job'));
  const floats = params === null ? new Float32Array(0) : all;
  if (params !== null) expectFloats(floats, status === 'done' ? params : 0, 'task result');
  for (let i = 0; i < floats.length; i++) if (!Number.isFinite(floats[i])) throw new ProtocolError(`malformed task result: non-finite delta at ${i}`);
  return {
    job: f.int('job'),
    round: f.int('round'),
    task: f.int('task'),
    status,
    trainError: f.num('trainError', 0, 1),
    trainLoss: f.num('trainLoss'),
    epochs: f.int('epochs'),
    ms: f.num('ms', 0),
    busy: f.bool('busy'),
    device: f.optionalOneOf('device', NODE_DEVICES, 'cpu'),
    ...(o.reason === undefined ? {} : { reason: f.str('reason', 1024) }),
    delta: floats,
  };
}

export function encodeJob(job: JobSpec): Uint8Array {
  const spec = (s: JobShard): ShardSpec => ({ name: s.name, rows: s.rows });
  const head: JobSpecHead = { ...job, shards: job.shards.map(spec), validation: spec(job.validation) };
  const tails = [...job.shards, job.validation].flatMap((s) => [s.features, s.labels]);
  return encode(head, ...tails);
}

export function decodeJob(payload: Uint8Array): JobSpec {
  const { o, floats } = split(payload, 'job');
  const f = new Fields(o, 'job');
  const shards = f.shards('shards');
  const validation = f.shard('validation');
  const all = [...shards, validation];
  expectFloats(floats, all.reduce((n, s) => n + s.rows * (FEATURES + 1), 0), 'job');
  let at = 0;
  const take = (s: ShardSpec): JobShard => {
    const features = floats.subarray(at, at + s.rows * FEATURES);
    const labels = labelsOf(floats.subarray(at + s.rows * FEATURES, at + s.rows * (FEATURES + 1)), `job shard ${s.name}`);
    at += s.rows * (FEATURES + 1);
    return { ...s, features, labels };
  };
  const taken = all.map(take);
  return {
    rounds: f.int('rounds', 1, 1_000_000),
    epochs: f.int('epochs', 1, 1_000_000),
    hidden: f.int('hidden', 1, 100_000),
    lr: f.num('lr', 0, 1e6),
    seed: f.int('seed', 0, 0xffffffff),
    weighting: f.oneOf('weighting', ['equal', 'samples'] as const),
    precision: f.optionalOneOf('precision', PRECISIONS, 'fp32'),
    shards: taken.slice(0, shards.length),
    validation: taken[shards.length],
  };
}

export function decodeJobUpdate(payload: Uint8Array): JobUpdate {
  const { o } = split(payload, 'job update');
  const f = new Fields(o, 'job update');
  const state = f.oneOf('state', ['queued', 'started', 'round', 'done', 'failed'] as const);
  const job = f.int('job');
  switch (state) {
    case 'queued':
      return { state, job, ahead: f.int('ahead') };
    case 'started':
      return { state, job };
    case 'done':
      return { state, job, validationError: f.num('validationError', 0, 1), ms: f.num('ms', 0), result: typeof o.result === 'object' && o.result !== null ? (o.result as Record<string, unknown>) : undefined };
    case 'failed':
      return { state, job, message: f.str('message', 8192) };
    case 'round': {
      const tasks = Array.isArray(o.tasks) ? (o.tasks as RoundReport['tasks']) : [];
      return { state, job, round: f.int('round'), validationError: f.num('validationError', 0, 1), trainError: f.num('trainError', 0, 1), ms: f.num('ms', 0), tasks };
    }
  }
}
