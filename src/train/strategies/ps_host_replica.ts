/**
 * Where a ps worker applies the server's averaged gradient under `--ps-reply gradients`. In that
 * mode every worker applies it with its own optimizer and must then hold exactly the server's
 * weights: the server compares the worker's parameter checksum with its own, and resynchronises a
 * late worker with its optimizer state. So the update must round as the server's cpu optimizer does.
 *
 * Which updater a worker gets is the device boundary's answer, not a device name: where the host
 * addresses the arena's memory (the cpu) the model's own optimizer already is the server's
 * arithmetic, and the update runs in place (`InPlaceUpdate`). Elsewhere (a GPU) its optimizer
 * would round otherwise (other kernels, other instruction order), the replicas would drift and the
 * checksums fail, so the update runs where the server's does, on a host replica (`HostReplica`).
 */
import { ParamArena } from '../../nn/arena.js';
import type { Optimizer } from '../../nn/optim/optimizer.js';
import { mappedMemory } from '../../tensor/boundary/host_values.js';
import { CPU, deviceMemory } from '../../tensor/storage.js';
import { hostArena } from '../boundary/host_arena.js';

/** A ps worker's update under reply 'gradients'. */
export interface PsUpdater {
  /** The optimizer that applies the averaged gradients (whose state a resync restores). */
  readonly optimizer: Optimizer;
  /**
   * Where the server's averaged gradient is received: host memory of its own, since the model's
   * gradients stay the local ones (what the loop measures and clips) until the update.
   */
  readonly grads: Float32Array;
  /** Takes the model's weights as they are now (after the start-up broadcast). */
  adopt(): Promise<void>;
  /** Host memory the server's weights are received into (`upload` then makes them the model's). */
  weightsToOverwrite(): Float32Array;
  /** Applies the received gradient at the server's learning rate. */
  step(lr: number): void;
  /** Makes the updater's weights the model's (nothing to do where they are the model's already). */
  upload(): void;
}

/** The updater for a model whose parameters and gradients live in `arena`, trained by `optimizer`. */
export function psUpdater(arena: ParamArena, optimizer: Optimizer): PsUpdater {
  return mappedMemory(arena.params) && mappedMemory(arena.grads) ? new InPlaceUpdate(arena, optimizer) : new HostReplica(arena, optimizer);
}

/** The model's own optimizer over its own (host) memory: the received gradient is written into the arena at the update. */
class InPlaceUpdate implements PsUpdater {
  readonly grads: Float32Array;

  constructor(private readonly arena: ParamArena, readonly optimizer: Optimizer) {
    this.grads = new Float32Array(arena.size);
  }

  async adopt(): Promise<void> {}

  weightsToOverwrite(): Float32Array {
    return hostArena(this.arena).paramsToOverwrite();
  }

  step(lr: number): void {
    this.arena.grads.write(this.grads);
    this.optimizer.lr = lr;
    this.optimizer.step();
  }

  upload(): void {}
}

/**
 * A host replica of a device model: a cpu arena of the same layout and an optimizer of the same
 * kind, settings and step count (`Optimizer.cloneOver`) take the averaged gradient, and the
 * resulting weights are uploaded whole to the device (what `--ps-reply weights` uploads every step
 * too). The device then holds the server's bits, and the checksum the server compares is still
 * read from the device's parameters, not from this replica: an upload that went wrong would be
 * caught. The device's own optimizer never steps; forward and backward stay on the device. The
 * price is the update on the host and one upload of the weights per step.
 */
export class HostReplica implements PsUpdater {
  /** The replica's parameters and gradients, in host memory, laid out as the device arena. */
  readonly arena: ParamArena;
  readonly optimizer: Optimizer;
  /** The weights (receive the server's here; upload them after each update): the replica arena's own memory. */
  readonly params: Float32Array;
  /** The replica arena's gradient memory. */
  readonly grads: Float32Array;

  constructor(private readonly deviceArena: ParamArena, deviceOptimizer: Optimizer) {
    const memory = deviceMemory(CPU);
    // Host arrays the cpu arena adopts (fromHost makes no copy there): the replica holds its memory, nothing is read.
    this.params = new Float32Array(deviceArena.size);
    this.grads = new Float32Array(deviceArena.size);
    this.arena = ParamArena.over(memory.fromHost(this.params), memory.fromHost(this.grads), deviceArena.entries);
    this.optimizer = deviceOptimizer.cloneOver(this.arena);
  }

  async adopt(): Promise<void> {
    this.params.set(await hostArena(this.deviceArena).params(false));
  }

  weightsToOverwrite(): Float32Array {
    return this.params;
  }

  step(lr: number): void {
    this.optimizer.lr = lr;
    this.optimizer.step();
  }

  /** The replica's weights go to the device (at the loop's flush). */
  upload(): void {
    hostArena(this.deviceArena).paramsToOverwrite().set(this.params);
  }
}
