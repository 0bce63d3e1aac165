import type { Backend } from '../../tensor/backend.js';
import { kernelsFor } from '../../tensor/dispatch.js';
import type { DecayRun, ParamArena } from '../arena.js';
import { deviceMemory, type DeviceBuffer, type Storage } from '../../tensor/storage.js';

export interface DecayOptions {
  /**
   * Decay every parameter, biases and norms included (torch.optim's plain behaviour). By default
   * weight decay skips the parameters the arena marks (see src/nn/decay.ts).
   */
  decayAll?: boolean;
}

/**
 * An optimizer updates a model's whole parameter arena from its gradient arena in one kernel call
 * per step: the same code serves any model, and the state (momentum, Adam moments) is flat too.
 */
export abstract class Optimizer {
  /** The learning rate used by the next step; LR schedules set it. */
  lr: number;
  protected stepCount = 0;
  /** The arena in runs of equal decay flag: one run unless some parameters skip weight decay. */
  protected readonly segments: readonly DecayRun[];

  constructor(protected readonly arena: ParamArena, lr: number, decay: DecayOptions = {}) {
    if (!(lr > 0)) throw new Error(`optimizer: learning rate must be positive, got ${lr}`);
    this.lr = lr;
    const runs = arena.decayRuns();
    this.segments = decay.decayAll || runs.every((r) => r.decay) ? [{ offset: 0, size: arena.size, decay: true }] : runs;
  }

  /** Views of a flat storage (parameters, gradients or state) cut like `segments`, as kernels take them. */
  protected cut(buf: Storage): DeviceBuffer[] {
    return this.segments.map((s) => (s.offset === 0 && s.size === buf.size ? buf : buf.view(s.offset, s.size)).buffer);
  }

  /** A zeroed state storage the size of the arena, on its device (momentum, Adam moments). */
  protected stateStorage(): Storage<Float32Array> {
    return deviceMemory(this.arena.device).alloc('float32', this.arena.size) as Storage<Float32Array>;
  }

  get steps(): number {
    return this.stepCount;
  }

  step(): void {
    this.stepCount++;
    this.update(kernelsFor(this.arena.params));
  }

  protected abstract update(k: Backend): void;

  /**
   * Sets the step counter with state restored into stateBuffers() (a checkpoint, or a ps worker
   * adopting the server's state): momentum initialisation and Adam's bias correction depend on it.
   */
  restoreSteps(steps: number): void {
    if (!Number.isInteger(steps) || steps < 0) throw new Error(`optimizer: step count must be a non-negative integer, got ${steps}`);
    this.stepCount = steps;
  }

  /** Flat state storages on the arena's device, in a fixed order (a GPU's are read with `await storage.read()`). */
  abstract stateStorages(): Storage<Float32Array>[];

  /** Flat state buffers, in a fixed order, for checkpoints: host memory, so the cpu device only (a GPU's: stateStorages). */
  stateBuffers(): Float32Array[] {
    return this.stateStorages().map((s) => s.readSync());
  }
}
