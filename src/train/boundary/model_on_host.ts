import { BatchNorm } from '../../nn/layers/norm.js';
import { type ModelSpec, createModel } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { mappedMemory } from '../../tensor/boundary/host_values.js';

/**
 * The model in host memory, for the writers: itself where the host addresses its memory (the
 * cpu), otherwise a host copy of its parameters, buffers (batch-norm running statistics) and
 * batch-norm step counts.
 */
export async function modelOnHost(model: Module, spec: ModelSpec): Promise<Module> {
  if (mappedMemory(model.arena().params)) return model;
  const copy = createModel(spec, 0);
  copy.arena().params.write(await model.arena().params.read());
  copy.writeBuffers((await model.readBuffers()).map(([, b]) => b));
  const trained = model.namedModules();
  copy.namedModules().forEach(([, m], i) => {
    if (m instanceof BatchNorm) m.batchesTracked = (trained[i][1] as BatchNorm).batchesTracked;
  });
  return copy;
}
