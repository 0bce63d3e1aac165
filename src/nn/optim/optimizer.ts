import type { Backend } from '../../tensor/backend.js';
import { kernelsFor } from '../../tensor/dispatch.js';
import type { ParamArena } from '../arena.js';

/**
 * An optimizer updates a model's whole parameter arena from its gradient arena in one kernel call
 * per step: the same code serves any model, and the state (momentum, Adam moments) is flat too.
 */
export abstract class Optimizer {
  /** The learning rate used by the next step; LR schedules set it. */
  lr: number;
  protected stepCount = 0;

  constructor(protected readonly arena: ParamArena, lr: number) {
    if (!(lr > 0)) throw new Error(`optimizer: learning rate must be positive, got ${lr}`);
    this.lr = lr;
  }

  get steps(): number {
    return this.stepCount;
  }

  step(): void {
    this.stepCount++;
    this.update(kernelsFor(this.arena.data));
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

  /** Flat state buffers, in a fixed order, for checkpoints. */
  abstract stateBuffers(): Float32Array[];
}
