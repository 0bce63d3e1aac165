/**
 * A strategy that forwards every member of the contract to the one it wraps: a wrapper extends it
 * and overrides only what it changes (GradAccumulation overrides runStep). Every member of
 * Strategy is listed here — the key test (test/train/strategies/delegating.test.ts) fails to
 * compile when the interface grows a member this class does not forward — so a wrapper never
 * drops one (as a hand-written forwarder once dropped hostOnly).
 */
import type { StepOutcome, StepWork } from '../loop/step.js';
import type {
  Checkpointing, DataShard, Evaluation, GradientExchange, Leadership, ModelBuilder, ModelSharding, StepPlanning,
  Strategy, StrategyContext, UpdateApplier,
} from './strategy.js';

export class DelegatingStrategy implements Strategy {
  constructor(readonly inner: Strategy) {}

  get name(): string { return this.inner.name; }
  get rank(): number { return this.inner.rank; }
  get worldSize(): number { return this.inner.worldSize; }

  setup(ctx: StrategyContext): Promise<void> { return this.inner.setup(ctx); }
  runStep(ctx: StrategyContext, work: StepWork): Promise<StepOutcome> { return this.inner.runStep(ctx, work); }
  afterStep(ctx: StrategyContext, step: number): Promise<void> { return this.inner.afterStep(ctx, step); }
  gather(local: Float32Array): Promise<Float32Array> { return this.inner.gather(local); }
  close(): Promise<void> { return this.inner.close(); }

  get dataShard(): DataShard | undefined { return this.inner.dataShard; }
  get hostOnly(): string | undefined { return this.inner.hostOnly; }
  get sharesHealth(): boolean | undefined { return this.inner.sharesHealth; }

  get gradients(): GradientExchange | undefined { return this.inner.gradients; }
  get update(): UpdateApplier | undefined { return this.inner.update; }
  get checkpointing(): Checkpointing | undefined { return this.inner.checkpointing; }
  get modelBuilder(): ModelBuilder | undefined { return this.inner.modelBuilder; }
  get evaluation(): Evaluation | undefined { return this.inner.evaluation; }
  get sharding(): ModelSharding | undefined { return this.inner.sharding; }
  get planning(): StepPlanning | undefined { return this.inner.planning; }
  get leadership(): Leadership | undefined { return this.inner.leadership; }
}
