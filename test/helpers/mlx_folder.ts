/** An MLX quantized folder as mlx-lm's `convert -q` writes one, made from a float model (for the tests that read one). */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import type { ModelSpec } from '../../src/nn/models/index.js';
import type { Module } from '../../src/nn/module.js';
import { quantize } from '../../src/tensor/ops/quant.js';

/** A safetensors file of raw tensors (dtype, shape, bytes). */
function writeRawSafetensors(file: string, tensors: [string, string, number[], Uint8Array][]): void {
  let offset = 0;
  const header: Record<string, unknown> = {};
  for (const [name, dtype, shape, bytes] of tensors) {
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([size, Buffer.from(json), ...tensors.map(([, , , b]) => b)]));
}

/** The float model as mlx-lm's `convert -q --q-bits 4` (or 8) writes it: every matrix whose rows are whole groups of 64. */
export function writeMlxFolder(folder: string, model: Module, spec: ModelSpec, config: Record<string, unknown>, bits: 4 | 8 = 4): void {
  const codeBytes = (64 * bits) / 8;
  const blockBytes = 4 + codeBytes;
  saveFolder(folder, model, spec);
  const out: [string, string, number[], Uint8Array][] = [];
  for (const [name, p] of model.namedParameters()) {
    const f32 = p.values() as Float32Array;
    if (p.ndim !== 2 || p.shape[1] % 64 !== 0) {
      out.push([name, 'F32', [...p.shape], new Uint8Array(f32.buffer.slice(f32.byteOffset, f32.byteOffset + f32.byteLength))]);
      continue;
    }
    const [rows, cols] = p.shape;
    const blocks = quantize(p, `mlx${bits}`).values() as Uint8Array;
    const groups = (rows * cols) / 64;
    const [codes, scales, biases] = [new Uint8Array(groups * codeBytes), new Uint8Array(groups * 2), new Uint8Array(groups * 2)];
    for (let g = 0; g < groups; g++) {
      const at = g * blockBytes;
      scales.set(blocks.subarray(at, at + 2), 2 * g);
      biases.set(blocks.subarray(at + 2, at + 4), 2 * g);
      codes.set(blocks.subarray(at + 4, at + blockBytes), codeBytes * g);
    }
    const base = name.slice(0, -'weight'.length);
    out.push([name, 'U32', [rows, (cols * bits) / 32], codes], [`${base}scales`, 'BF16', [rows, cols / 64], scales], [`${base}biases`, 'BF16', [rows, cols / 64], biases]);
  }
  writeRawSafetensors(join(folder, 'model.safetensors'), out);
  const file = join(folder, 'config.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), ...config }));
}
