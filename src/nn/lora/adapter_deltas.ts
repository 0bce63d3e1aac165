/**
 * A PEFT adapter merged into weights as they are loaded, one tensor at a time, for a process that
 * holds part of a model (a generation pipeline's stage merges into its own layers only): the same
 * W + (alpha / r)·B A, in the same arithmetic (addLoraDelta), as mergeAdapterInto does to a whole
 * model, so every stage's weights equal one process's.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError } from '../checkpoint.js';
import { type SafeTensor, toFloat32 } from '../interchange/safetensors.js';
import { addLoraDelta } from './apply.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, readAdapterConfig, readAdapterTensors } from './peft.js';

export class AdapterDeltas {
  private constructor(
    private readonly file: string,
    private readonly modules: ReadonlyMap<string, { a: SafeTensor; b: SafeTensor }>,
    private readonly scaling: number,
  ) {}

  /** The folder's adapter_config.json and adapter_model.safetensors. */
  static read(dir: string): AdapterDeltas {
    const config = readAdapterConfig(dir);
    return new AdapterDeltas(join(dir, ADAPTER_WEIGHTS), readAdapterTensors(dir), config.alpha / config.rank);
  }

  /** Refuses an adapter of modules the model (its parameter shapes, by name: a deferred build holds no memory) lacks, or of other shapes. */
  check(shapes: ReadonlyMap<string, readonly number[]>): void {
    for (const [module, { a, b }] of this.modules) {
      const shape = shapes.get(`${module}.weight`);
      if (!shape || shape.length !== 2) throw new CheckpointError(this.file, `adapts ${module}, which is no Linear layer of the model`);
      const [out, inF] = shape;
      if (a.shape[1] !== inF || b.shape[0] !== out) throw new CheckpointError(this.file, `${module}: lora_A [${a.shape}] / lora_B [${b.shape}] do not fit its weight [${shape}]`);
    }
  }

  /** Whether the adapter adapts parameter `name` (a module's weight). */
  adapts(name: string): boolean {
    return name.endsWith('.weight') && this.modules.has(name.slice(0, -'.weight'.length));
  }

  /** Adds the update to parameter `name`'s float32 `values` [out, in] in place (it must be one the adapter adapts). */
  mergeInto(name: string, shape: readonly number[], values: Float32Array): void {
    const m = name.slice(0, -'.weight'.length);
    const module = this.modules.get(m);
    if (!module) throw new Error(`AdapterDeltas: the adapter does not adapt ${name}`);
    addLoraDelta(values, toFloat32(this.file, `${m}.lora_A`, module.a), toFloat32(this.file, `${m}.lora_B`, module.b), shape[0], shape[1], module.a.shape[0], this.scaling);
  }
}

/** What identifies an adapter folder's contents wherever it lies (a digest of its two files): stages of a pipeline must merge the same one. */
export function adapterDigest(dir: string): string {
  const hash = createHash('sha256');
  for (const f of [ADAPTER_CONFIG, ADAPTER_WEIGHTS]) hash.update(readFileSync(join(dir, f)));
  return hash.digest('hex').slice(0, 16);
}
