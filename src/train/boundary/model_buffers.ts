/**
 * A model's buffers (batch-norm running statistics) as a strategy exchanges them, through the
 * boundary's host values: on the cpu the storages' own memory (zero-copy, nothing written back),
 * on a GPU awaited copies, exchanged, and written back before training goes on.
 */
import type { Module } from '../../nn/module.js';
import type { Storage } from '../../tensor/storage.js';
import { allValuesToSend, installAll, valuesToReceive } from './host_values.js';

const storagesOf = (model: Module): Storage<Float32Array>[] => model.namedBufferStorages().map(([, b]) => b);

/** Runs `exchange` over each buffer's host values in turn (broadcast, average) and installs what it left there. */
export async function exchangeBuffers(model: Module, exchange: (values: Float32Array) => Promise<unknown>): Promise<void> {
  const storages = storagesOf(model);
  const values = await allValuesToSend(storages);
  for (const v of values) await exchange(v);
  installAll(storages, values);
}

/**
 * Host arrays for buffers about to be replaced whole (a server's welcome): the storages' memory on
 * the cpu, fresh arrays on a GPU. Hand them to `model.writeBuffers()` once filled.
 */
export function buffersToOverwrite(model: Module): Float32Array[] {
  return storagesOf(model).map(valuesToReceive);
}
