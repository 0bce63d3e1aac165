import { LoopDrivenStrategy } from '../loop/loop_driven.js';
import type { CommTiming, GradientExchange, Strategy } from './strategy.js';

/** One process, nothing to combine. */
export class LocalStrategy extends LoopDrivenStrategy implements Strategy, GradientExchange {
  readonly name = 'local';
  readonly rank = 0;
  readonly worldSize = 1;
  readonly sendsNothing: boolean = true;

  async setup(): Promise<void> {}

  async reduceGradients(_ctx: unknown, localLoss: number): Promise<CommTiming & { loss: number }> {
    return { loss: localLoss, commMs: 0, waitMs: 0 };
  }

  async afterStep(): Promise<void> {}

  async gather(local: Float32Array): Promise<Float32Array> {
    return local;
  }

  async close(): Promise<void> {}
}
