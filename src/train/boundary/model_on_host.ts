import { BatchNorm } from '../../nn/layers/norm.js';
import { readParameterFloat32 } from '../../nn/lora/apply.js';
import { type ModelSpec, createModel } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { mappedMemory } from '../../tensor/boundary/host_values.js';

/**
 * The model in host memory, for the writers: itself where the host addresses its memory (the
 * cpu), otherwise a host copy of its parameters, buffers (batch-norm running statistics) and
 * batch-norm step counts. Parameters are copied by name: a model with frozen parameters
 * (--freeze) has an arena of the trained ones only, and its frozen ones live outside it.
 */
export async function modelOnHost(model: Module, spec: ModelSpec): Promise<Module> {
  if (mappedMemory(model.arena().params)) return model;
  const copy = createModel(spec, 0);
  const into = new Map(copy.namedParameters());
  for (const [name, p] of model.namedParameters()) {
    const target = into.get(name);
    if (!target) throw new Error(`--save: the model has ${name}, which a plain ${spec.type} model of its spec does not`);
    target.storage.write(await readParameterFloat32(p));
  }
  copy.writeBuffers((await model.readBuffers()).map(([, b]) => b));
  const trained = model.namedModules();
  copy.namedModules().forEach(([, m], i) => {
    if (m instanceof BatchNorm) m.batchesTracked = (trained[i][1] as BatchNorm).batchesTracked;
  });
  return copy;
}
