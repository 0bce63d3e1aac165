import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { Module } from './module.js';

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
const MAGIC = Buffer.from('SMOLMDL\0', 'latin1');

export interface TensorRecord {
  name: string;
  shape: number[];
  offset: number;
}

export interface ModelFileHeader {
  format: 'smolcluster-model';
  version: number;
  dtype: 'float32';
  architecture: unknown;
  params: TensorRecord[];
  buffers: TensorRecord[];
  meta?: Record<string, unknown>;
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
  const buffers = model.namedBuffers().map(([name, b]) => {
    const rec = { name, shape: [b.length], offset };
    offset += b.length;
    return rec;
  });
  return { format: 'smolcluster-model', version: MODEL_FORMAT_VERSION, dtype: 'float32', architecture, params, buffers, meta };
}

/** Writes the model atomically (temp file + rename), so a crash never leaves half a file. */
export function saveModel(file: string, model: Module, architecture: unknown, meta?: Record<string, unknown>): void {
  const header = headerFor(model, architecture, meta);
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (4 - ((MAGIC.length + 4 + json.length) % 4)) % 4;
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  const parts = [MAGIC, len, json, floatBytes(model.arena().data)];
  for (const [, b] of model.namedBuffers()) parts.push(floatBytes(b));
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, Buffer.concat(parts));
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
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
  if (header.format !== 'smolcluster-model') throw new CheckpointError(file, `unknown format "${String(header.format)}"`);
  if (header.version !== MODEL_FORMAT_VERSION) {
    throw new CheckpointError(file, `format version ${header.version} is not supported (this build reads version ${MODEL_FORMAT_VERSION})`);
  }
  return { header, data, dataStart: 12 + hlen };
}

/** Loads parameters and buffers into `model`, refusing a file of another architecture. */
export function loadModel(file: string, model: Module, architecture: unknown): ModelFileHeader {
  const { header, data, dataStart } = readModelHeader(file);
  const expected = headerFor(model, architecture);
  if (JSON.stringify(header.architecture) !== JSON.stringify(architecture)) {
    throw new CheckpointError(file, `holds architecture ${JSON.stringify(header.architecture)}, but the model is ${JSON.stringify(architecture)}`);
  }
  const layout = (h: ModelFileHeader): string => JSON.stringify([h.params, h.buffers]);
  if (layout(header) !== layout(expected)) throw new CheckpointError(file, 'parameter names or shapes differ from the model');
  const floats = expected.params.reduce((n, p) => n + p.shape.reduce((a, d) => a * d, 1), 0) +
    expected.buffers.reduce((n, b) => n + b.shape[0], 0);
  if (data.length - dataStart !== floats * 4) {
    throw new CheckpointError(file, `truncated or oversized: expected ${floats * 4} data bytes, found ${data.length - dataStart}`);
  }
  const all = new Float32Array(data.buffer.slice(data.byteOffset + dataStart, data.byteOffset + data.length));
  const arena = model.arena();
  arena.data.set(all.subarray(0, arena.size));
  for (const [i, [, b]] of model.namedBuffers().entries()) {
    const off = expected.buffers[i].offset;
    b.set(all.subarray(off, off + b.length));
  }
  return header;
}
