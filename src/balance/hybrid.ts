import { type BalancePolicy, type Decision, type Measured, type PolicyOptions, describeMeasured, promisesGain, sharesFrom, withDefaults } from './policy.js';
import { boundedStep, largestChange } from './shares.js';

/**
 * Calibration first (as proportional), then dynamic re-estimation every `rebalanceInterval` steps
 * in which no share moves by more than `maxChange`: a noisy window cannot swing the split.
 */
export class HybridPolicy implements BalancePolicy {
  readonly name = 'hybrid';
  private readonly o: Required<PolicyOptions>;

  constructor(options: PolicyOptions) {
    this.o = withDefaults(options);
  }

  decidesAt(step: number): boolean {
    return step === this.o.calibrationSteps || (step > this.o.calibrationSteps && step % this.o.rebalanceInterval === 0);
  }

  decide(step: number, current: readonly number[], m: Measured): Decision | null {
    const floor = this.o.floorFraction / current.length;
    if (step === this.o.calibrationSteps) {
      const shares = sharesFrom(m, 'window', floor, this.o.model);
      if (largestChange(shares, current) < this.o.deadband) return null;
      return { shares, reason: `calibration over ${this.o.calibrationSteps - 1} timed steps: ${describeMeasured(m, 'window')}` };
    }
    const target = sharesFrom(m, 'trend', floor, this.o.model);
    const shares = boundedStep(current, target, this.o.maxChange);
    if (largestChange(shares, current) < this.o.deadband || !promisesGain(m, 'trend', current, shares, this.o.minGain)) return null;
    const bounded = largestChange(target, current) > this.o.maxChange ? ` (bounded to ±${this.o.maxChange})` : '';
    return { shares, reason: `trend at step ${step}: ${describeMeasured(m, 'trend')}${bounded}` };
  }
}
