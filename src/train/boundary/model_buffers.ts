/**
 * A model's buffers (batch-norm running statistics) as a strategy exchanges them, through the
 * boundary's host values: on the cpu the storages' own memory (zero-copy, nothing written back),
 * on a GPU awaited copies, exchanged, and written back before training goes on.
 */
import type { Module } from '../../nn/module.js';
import type { Storage } from '../../tensor/storage.js';
import { allValuesToSend, installAll, valuesToReceive } from '../../tensor/boundary/host_values.js';
import type { StorageCollectives } from '../../parallel/boundary/storage_collectives.js';

const storagesOf = (model: Module): Storage<Float32Array>[] => model.namedBufferStorages().map(([, b]) => b);

/** The storages that make a model what it is: its parameter arena, then its buffers. */
export function modelStorages(model: Module): Storage<Float32Array>[] {
  return [model.arena().params, ...storagesOf(model)];
}

/** `root`'s values into every rank's storages, one broadcast each, in order (the start of a run). */
export async function broadcastStorages(collectives: StorageCollectives, storages: readonly Storage<Float32Array>[], root: number): Promise<void> {
  for (const s of storages) await collectives.broadcast(s, root);
}

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
