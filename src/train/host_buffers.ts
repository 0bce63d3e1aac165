/**
 * A model's buffers (batch-norm running statistics) as a strategy exchanges them. On the cpu they
 * are the storages themselves (zero-copy, nothing written back); on a GPU they are read (awaited)
 * into host copies, exchanged, and written back to the device before training goes on.
 */
import type { Module } from '../nn/module.js';
import { arraysToOverwrite } from '../tensor/overwrite.js';

/** Runs `exchange` over each buffer's host values in turn (broadcast, average) and writes GPU copies back. */
export async function exchangeBuffers(model: Module, exchange: (values: Float32Array) => Promise<unknown>): Promise<void> {
  const buffers = (await model.readBuffers()).map(([, b]) => b);
  for (const b of buffers) await exchange(b);
  model.writeBuffers(buffers);
}

/**
 * Host arrays for buffers about to be replaced whole (a server's welcome): the storages on the
 * cpu, fresh arrays on a GPU. Hand them to `model.writeBuffers()` once filled.
 */
export function buffersToOverwrite(model: Module): Float32Array[] {
  return arraysToOverwrite(model.namedBufferStorages().map(([, b]) => b));
}
