/**
 * PEFT adapter folders loaded side by side over one base for serving (`serve --lora-modules NAME=DIR`,
 * repeatable): each module an adapter names becomes an AdaptersLinear holding every adapter's A and
 * B under its name, never merged into the base, and each request runs the one its `model` names.
 * Adapters may differ in rank, alpha and targets; a module no adapter names stays a plain Linear.
 */
import { join } from 'node:path';
import { Tensor } from '../../tensor/tensor.js';
import { CheckpointError } from '../checkpoint.js';
import { toFloat32 } from '../interchange/safetensors.js';
import { Linear } from '../layers/linear.js';
import type { Module } from '../module.js';
import { AdaptersLinear } from './adapters_linear.js';
import { ADAPTER_WEIGHTS, readAdapterConfig, readAdapterTensors } from './peft.js';

export interface NamedAdapter {
  readonly name: string;
  readonly dir: string;
}

/** Loads every adapter onto `model` (on the host) under its name; a file that does not fit the model is refused by module. */
export function loadServedAdapters(model: Module, adapters: readonly NamedAdapter[]): void {
  const seen = new Set<string>();
  const modules = new Map(model.namedModules());
  for (const { name, dir } of adapters) {
    if (seen.has(name)) throw new CheckpointError(dir, `the adapter name ${name} is given twice (--lora-modules NAME=DIR names each once)`);
    seen.add(name);
    const config = readAdapterConfig(dir);
    const file = join(dir, ADAPTER_WEIGHTS);
    for (const [module, { a, b }] of readAdapterTensors(dir)) {
      const layer = adaptersLayer(modules, module, file);
      if (a.shape[1] !== layer.inFeatures || b.shape[0] !== layer.outFeatures) {
        throw new CheckpointError(file, `${module}: lora_A [${a.shape}] / lora_B [${b.shape}] do not fit its weight [${layer.outFeatures},${layer.inFeatures}]`);
      }
      layer.addSlot(name, {
        a: Tensor.fromHost(toFloat32(file, `${module}.lora_A`, a), a.shape),
        b: Tensor.fromHost(toFloat32(file, `${module}.lora_B`, b), b.shape),
        scaling: config.alpha / config.rank,
      });
    }
  }
}

/** The AdaptersLinear at `module`, wrapping the plain Linear there (and recording it in `modules`) the first time an adapter names it. */
function adaptersLayer(modules: Map<string, Module>, module: string, file: string): AdaptersLinear {
  const m = modules.get(module);
  if (m instanceof AdaptersLinear) return m;
  if (!(m instanceof Linear)) throw new CheckpointError(file, `adapts ${module}, which is ${m ? `a ${m.constructor.name}` : 'no module'} of the model, not a Linear layer`);
  const dot = module.lastIndexOf('.');
  const wrapped = new AdaptersLinear(m);
  modules.get(dot < 0 ? '' : module.slice(0, dot))!.replaceModule(module.slice(dot + 1), wrapped);
  modules.set(module, wrapped);
  return wrapped;
}
