/**
 * A GPU ps worker's host replica, for `--ps-reply gradients`. In that mode every worker applies
 * the server's averaged gradient with its own optimizer and must then hold exactly the server's
 * weights: the server compares the worker's parameter checksum with its own, and resynchronises a
 * late worker with its optimizer state. A GPU optimizer rounds otherwise than the server's cpu one
 * (other kernels, other instruction order), so the replicas would drift and the checksums fail.
 *
 * So a GPU worker applies the update where the server does, on the host: a cpu arena of the same
 * layout and an optimizer of the same kind, settings and step count (`Optimizer.cloneOver`) take
 * the averaged gradient, and the resulting weights are uploaded whole to the GPU (what `--ps-reply
 * weights` uploads every step too). The GPU then holds the server's bits, and the checksum the
 * server compares is still read from the GPU's parameters, not from this replica: an upload that
 * went wrong would be caught. The GPU's own optimizer never steps; forward and backward stay on
 * the GPU. The price is the update on the host and one upload of the weights per step.
 */
import { ParamArena } from '../../nn/arena.js';
import type { Optimizer } from '../../nn/optim/optimizer.js';
import { CPU, deviceMemory } from '../../tensor/storage.js';

export class HostReplica {
  /** The replica's parameters and gradients, in host memory, laid out as the GPU arena. */
  readonly arena: ParamArena;
  /** The optimizer that applies the server's averaged gradients (the GPU model's settings, on the cpu). */
  readonly optimizer: Optimizer;
  /** The weights (receive the server's here; upload them after each update): the replica arena's own memory. */
  readonly params: Float32Array;
  /** Where the server's averaged gradient is received: the replica arena's gradient memory. */
  readonly grads: Float32Array;

  constructor(deviceArena: ParamArena, deviceOptimizer: Optimizer) {
    const memory = deviceMemory(CPU);
    // Host arrays the cpu arena adopts (fromHost makes no copy there): the replica holds its memory, nothing is read.
    this.params = new Float32Array(deviceArena.size);
    this.grads = new Float32Array(deviceArena.size);
    this.arena = ParamArena.over(memory.fromHost(this.params), memory.fromHost(this.grads), deviceArena.entries);
    this.optimizer = deviceOptimizer.cloneOver(this.arena);
  }

  /** Applies the received averaged gradient at the server's learning rate; returns the new weights. */
  step(lr: number): Float32Array {
    this.optimizer.lr = lr;
    this.optimizer.step();
    return this.params;
  }
}
