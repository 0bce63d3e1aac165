import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic_file.js';
import type { RngState } from '../util/rng.js';
import type { Module } from './module.js';
import type { Optimizer } from './optim/optimizer.js';

/**
 * Model files (documented in docs/CHECKPOINT.md):
 *
 *   bytes 0..7    magic "SMOLMDL\0"
 *   bytes 8..11   uint32 LE: length H of the JSON header in bytes
 *   bytes 12..    H bytes of UTF-8 JSON header, space-padded so the data starts 4-byte aligned
 *   then          raw little-endian float32: the parameter arena, then each buffer in header order
 *
 * The header records the format version, the architecture (model spec) and every tensor's name,
 * shape and offset, so a file is refused with a clear message when it belongs to another model.
 */
export const MODEL_FORMAT_VERSION = 1;
/** Training checkpoints: the same layout, format "smolcluster-checkpoint" (docs/CHECKPOINT.md). */
export const CHECKPOINT_FORMAT_VERSION = 1;
const MAGIC = Buffer.from('SMOLMDL\0', 'latin1');

export interface TensorRecord {
  name: string;
  shape: number[];
  offset: number;
}

export interface ModelFileHeader {
  format: 'smolcluster-model' | 'smolcluster-checkpoint';
  version: number;
  dtype: 'float32';
  architecture: unknown;
  params: TensorRecord[];
  buffers: TensorRecord[];
  meta?: Record<string, unknown>;
}

/** A checkpoint's header: a model header plus the optimizer, the random streams and the caller's state. */
export interface CheckpointFileHeader extends ModelFileHeader {
  format: 'smolcluster-checkpoint';
  /** The optimizer's class, step count and flat state buffers (stored after the model's buffers). */
  optimizer: { kind: string; steps: number; state: TensorRecord[] };
  /** Module.namedRngs() states, by name. */
  rngs: Record<string, RngState>;
  /** What the training loop needs to continue (position, schedule, run identity): opaque here. */
  state: Record<string, unknown>;
  /** Named buffers of the strategy's own state (stored after the optimizer's; absent: none). */
  extra?: TensorRecord[];
}

/** Named float32 buffers a checkpoint carries beside model and optimizer (a strategy's state). */
export type NamedBuffers = Array<[name: string, buffer: Float32Array]>;

/** What a checkpoint writes of a model and its optimizer, in host memory (readTrainingState). */
export interface TrainingState {
  params: Float32Array;
  /** The model's buffers, in namedBuffers order. */
  buffers: Float32Array[];
  /** The optimizer's state buffers, in stateStorages order. */
  optimizer: Float32Array[];
}

/** The model's parameters and buffers and the optimizer's state on the host: owned copies read on any device (awaited). */
export async function readTrainingState(model: Module, optimizer: Optimizer): Promise<TrainingState> {
  const [p, buffers, state] = await Promise.all([
    model.arena().params.read(), model.readBuffers(), Promise.all(optimizer.stateStorages().map((s) => s.read())),
  ]);
  return { params: p, buffers: buffers.map(([, b]) => b), optimizer: state };
}

export class CheckpointError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'CheckpointError';
  }
}

function headerFor(model: Module, architecture: unknown, meta?: Record<string, unknown>): ModelFileHeader {
  const arena = model.arena();
  const params = arena.entries.map((e) => ({ name: e.name, shape: [...e.shape], offset: e.offset }));
  let offset = arena.size;
  // Names and sizes only: the storages are not read (they may live on a GPU).
  const buffers = model.namedBufferStorages().map(([name, b]) => {
    const rec = { name, shape: [b.size], offset };
    offset += b.size;
    return rec;
  });
  return { format: 'smolcluster-model', version: MODEL_FORMAT_VERSION, dtype: 'float32', architecture, params, buffers, meta };
}

/**
 * Writes the model atomically (temp file, fsync, rename, fsync of the folder), so a crash never
 * leaves half a file. Its values are read first (awaited owned copies, on any device).
 */
export async function saveModel(file: string, model: Module, architecture: unknown, meta?: Record<string, unknown>): Promise<void> {
  const [params, buffers] = await Promise.all([model.arena().params.read(), model.readBuffers()]);
  writeTensorFile(file, headerFor(model, architecture, meta), [params, ...buffers.map(([, b]) => b)]);
}

/**
 * A training checkpoint: the model file's layout with format "smolcluster-checkpoint", the
 * optimizer's state buffers after the model's buffers, and the optimizer step count, the modules'
 * random-stream states and `state` (the loop's position) in the header. Written atomically.
 * `values` are the model's and optimizer's on the host (`await readTrainingState(model, optimizer)`
 * on any device).
 */
export function saveCheckpoint(
  file: string, model: Module, architecture: unknown, optimizer: Optimizer, state: Record<string, unknown>, extra: NamedBuffers = [],
  values: TrainingState,
): void {
  const base = headerFor(model, architecture);
  let offset = model.arena().size + values.buffers.reduce((n, b) => n + b.length, 0);
  const buffers = values.optimizer;
  const records = buffers.map((b, i) => {
    const rec = { name: `state.${i}`, shape: [b.length], offset };
    offset += b.length;
    return rec;
  });
  const extraRecords = extra.map(([name, b]) => {
    const rec = { name, shape: [b.length], offset };
    offset += b.length;
    return rec;
  });
  const rngs = Object.fromEntries(model.namedRngs().map(([name, r]) => [name, r.getState()]));
  const header: CheckpointFileHeader = {
    ...base, format: 'smolcluster-checkpoint', version: CHECKPOINT_FORMAT_VERSION,
    optimizer: { kind: optimizer.constructor.name, steps: optimizer.steps, state: records }, rngs, state,
    ...(extra.length > 0 ? { extra: extraRecords } : {}),
  };
  writeTensorFile(file, header, [values.params, ...values.buffers, ...buffers, ...extra.map(([, b]) => b)]);
}

function writeTensorFile(file: string, header: object, parts: Float32Array[]): void {
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (4 - ((MAGIC.length + 4 + json.length) % 4)) % 4;
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  try {
    writeFileAtomic(file, Buffer.concat([MAGIC, len, json, ...parts.map(floatBytes)]));
  } catch (e) {
    throw new CheckpointError(file, `cannot write: ${(e as Error).message}`);
  }
}

function floatBytes(a: Float32Array): Buffer {
  if (!isLittleEndian()) throw new Error('model files are little-endian; big-endian hosts are not supported');
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function isLittleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

/** Reads and validates a model file's header without touching any model. */
export function readModelHeader(file: string): { header: ModelFileHeader; data: Buffer; dataStart: number } {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (e) {
    throw new CheckpointError(file, `cannot read: ${(e as Error).message}`);
  }
  if (data.length < 12 || !data.subarray(0, 8).equals(MAGIC)) throw new CheckpointError(file, 'not a smolcluster model file (bad magic)');
  const hlen = data.readUInt32LE(8);
  if (12 + hlen > data.length) throw new CheckpointError(file, `truncated: header declares ${hlen} bytes, file has ${data.length - 12}`);
  let header: ModelFileHeader;
  try {
    header = JSON.parse(data.subarray(12, 12 + hlen).toString('utf8')) as ModelFileHeader;
  } catch {
    throw new CheckpointError(file, 'header is not valid JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new CheckpointError(file, 'header is not a JSON object');
  const versions: Record<string, number> = { 'smolcluster-model': MODEL_FORMAT_VERSION, 'smolcluster-checkpoint': CHECKPOINT_FORMAT_VERSION };
  const known = versions[String(header.format)];
  if (known === undefined) throw new CheckpointError(file, `unknown format "${String(header.format)}"`);
  if (header.version !== known) {
    throw new CheckpointError(file, `format version ${header.version} is not supported (this build reads version ${known})`);
  }
  return { header, data, dataStart: 12 + hlen };
}

/** Loads parameters and buffers into `model` (from a model file or a checkpoint), refusing a file of another architecture. */
export function loadModel(file: string, model: Module, architecture: unknown): ModelFileHeader {
  const { header, data, dataStart } = readModelHeader(file);
  const extra = header.format === 'smolcluster-checkpoint' ? checkpointExtraFloats(file, header as CheckpointFileHeader) : 0;
  const all = checkedModelData(file, header, data, dataStart, model, architecture, extra);
  copyModel(all, model);
  return header;
}

/**
 * Restores a checkpoint into `model` and `optimizer` and returns its header (the caller's `state`
 * included). Everything is checked before anything is written, so a refused file changes nothing.
 */
export function loadCheckpoint(file: string, model: Module, architecture: unknown, optimizer: Optimizer, extra: NamedBuffers = []): CheckpointFileHeader {
  const { header: h, data, dataStart } = readModelHeader(file);
  if (h.format !== 'smolcluster-checkpoint') throw new CheckpointError(file, 'is a model file, not a training checkpoint (no optimizer state)');
  const header = h as CheckpointFileHeader;
  const extraFloats = checkpointExtraFloats(file, header);
  if (header.optimizer.kind !== optimizer.constructor.name) {
    throw new CheckpointError(file, `holds ${header.optimizer.kind} state, but the optimizer is ${optimizer.constructor.name}`);
  }
  // Storages, written (uploaded on a GPU) once everything is checked.
  const buffers = optimizer.stateStorages();
  const lengths = (a: number[]): string => JSON.stringify(a);
  if (lengths(header.optimizer.state.map((r) => r.shape[0])) !== lengths(buffers.map((b) => b.size))) {
    throw new CheckpointError(file, 'optimizer state sizes differ from the optimizer');
  }
  const rngs = model.namedRngs();
  const names = (a: string[]): string => JSON.stringify([...a].sort());
  if (names(Object.keys(header.rngs ?? {})) !== names(rngs.map(([n]) => n))) throw new CheckpointError(file, 'random streams differ from the model');
  if (typeof header.state !== 'object' || header.state === null) throw new CheckpointError(file, 'header has no state object');
  const held = JSON.stringify((header.extra ?? []).map((r) => [r.name, r.shape[0]]));
  const needed = JSON.stringify(extra.map(([name, b]) => [name, b.length]));
  if (held !== needed) throw new CheckpointError(file, `holds strategy state ${held}, this run needs ${needed}`);
  const all = checkedModelData(file, header, data, dataStart, model, architecture, extraFloats);
  copyModel(all, model);
  for (const [i, b] of buffers.entries()) {
    const off = header.optimizer.state[i].offset;
    b.write(all.subarray(off, off + b.size));
  }
  for (const [i, [, b]] of extra.entries()) {
    const off = header.extra![i].offset;
    b.set(all.subarray(off, off + b.length));
  }
  optimizer.restoreSteps(header.optimizer.steps);
  for (const [name, r] of rngs) r.setState(header.rngs[name]);
  return header;
}

/** Floats a checkpoint stores after the model (optimizer state, strategy state), after checking its header. */
function checkpointExtraFloats(file: string, h: CheckpointFileHeader): number {
  const o = h.optimizer;
  if (typeof o !== 'object' || o === null || typeof o.kind !== 'string' || !Number.isInteger(o.steps) || o.steps < 0 || !Array.isArray(o.state)) {
    throw new CheckpointError(file, 'header has no valid optimizer record');
  }
  if (h.extra !== undefined && !Array.isArray(h.extra)) throw new CheckpointError(file, 'header has an invalid strategy-state record');
  const floats = (rs: TensorRecord[]): number => rs.reduce((n, r) => n + (Array.isArray(r?.shape) && Number.isInteger(r.shape[0]) ? r.shape[0] : NaN), 0);
  return floats(o.state) + floats(h.extra ?? []);
}

/** The data section as floats, after checking architecture, layout and size (`extra` floats after the model). */
function checkedModelData(
  file: string, header: ModelFileHeader, data: Buffer, dataStart: number, model: Module, architecture: unknown, extra: number,
): Float32Array {
  const expected = headerFor(model, architecture);
  if (JSON.stringify(header.architecture) !== JSON.stringify(architecture)) {
    throw new CheckpointError(file, `holds architecture ${JSON.stringify(header.architecture)}, but the model is ${JSON.stringify(architecture)}`);
  }
  const layout = (h: ModelFileHeader): string => JSON.stringify([h.params, h.buffers]);
  if (layout(header) !== layout(expected)) throw new CheckpointError(file, 'parameter names or shapes differ from the model');
  const floats = expected.params.reduce((n, p) => n + p.shape.reduce((a, d) => a * d, 1), 0) +
    expected.buffers.reduce((n, b) => n + b.shape[0], 0) + extra;
  if (data.length - dataStart !== floats * 4) {
    throw new CheckpointError(file, `truncated or oversized: expected ${floats * 4} data bytes, found ${data.length - dataStart}`);
  }
  return new Float32Array(data.buffer.slice(data.byteOffset + dataStart, data.byteOffset + data.length));
}

/** Parameters and buffers from a file's floats into the model, on whatever device it lives. */
function copyModel(all: Float32Array, model: Module): void {
  const arena = model.arena();
  arena.params.write(all.subarray(0, arena.size));
  let off = arena.size;
  model.writeBuffers(model.namedBufferStorages().map(([, b]) => all.subarray(off, (off += b.size))));
}
