import { type BalancePolicy, type Decision, type Measured, type PolicyOptions, describeMeasured, sharesFrom, withDefaults } from './policy.js';
import { largestChange } from './shares.js';

/** Re-estimated every `rebalanceInterval` steps from the moving average of each shard's time per sample. */
export class DynamicPolicy implements BalancePolicy {
  readonly name = 'dynamic';
  private readonly o: Required<PolicyOptions>;

  constructor(options: PolicyOptions) {
    this.o = withDefaults(options);
  }

  decidesAt(step: number): boolean {
    return step > 0 && step % this.o.rebalanceInterval === 0;
  }

  decide(step: number, current: readonly number[], m: Measured): Decision | null {
    const shares = sharesFrom(m, 'ema', this.o.floorFraction / current.length);
    if (largestChange(shares, current) < this.o.deadband) return null;
    return { shares, reason: `moving average at step ${step}: ${describeMeasured(m, 'ema')}` };
  }
}
