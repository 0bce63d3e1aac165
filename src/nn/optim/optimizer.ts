import type { Backend } from '../../tensor/backend.js';
import { kernelsFor } from '../../tensor/dispatch.js';
import type { DecayRun, ParamArena } from '../arena.js';
import { deviceMemory, type DeviceBuffer, type Storage } from '../../tensor/storage.js';
import { mappedOrRefuse } from '../../tensor/boundary/host_values.js';

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
    // 0 is torch's and the HF Trainer's too (a round trip, an evaluation-only pass, a frozen warm-up): the step moves nothing.
    if (!(lr >= 0)) throw new Error(`optimizer: learning rate must be zero or positive, got ${lr}`);
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

  /** The state's storages (momentum, Adam moments) on the arena's device, in a fixed order. */
  abstract stateStorages(): Storage<Float32Array>[];

  /**
   * Flat state buffers, in a fixed order, as host memory: the storages' own where the host maps
   * them (the cpu; a host-resident server), refused elsewhere (read `stateStorages()` with await).
   */
  stateBuffers(): Float32Array[] {
    return this.stateStorages().map((s, i) => mappedOrRefuse(s, `optimizer state ${i}`));
  }

  /**
   * An optimizer of the same kind and settings over another arena of the same layout (on any
   * device), at the same step count, with zeroed state: a GPU ps worker's host replica of its
   * model steps with it exactly as the server's cpu optimizer does.
   */
  abstract cloneOver(arena: ParamArena): Optimizer;

  /** `cloneOver`'s tail: the clone takes this one's step count and LR. */
  protected withProgress<O extends Optimizer>(clone: O): O {
    clone.restoreSteps(this.stepCount);
    clone.lr = this.lr;
    return clone;
  }
}
