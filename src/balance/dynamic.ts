import { type BalancePolicy, type Decision, type Measured, type PolicyOptions, describeMeasured, promisesGain, sharesFrom, withDefaults } from './policy.js';
import { largestChange } from './shares.js';

/** Re-estimated every `rebalanceInterval` steps from the trend of each shard's measured times. */
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
    const shares = sharesFrom(m, 'trend', this.o.floorFraction / current.length, this.o.model);
    if (largestChange(shares, current) < this.o.deadband || !promisesGain(m, 'trend', current, shares, this.o.minGain)) return null;
    return { shares, reason: `trend at step ${step}: ${describeMeasured(m, 'trend')}` };
  }
}
