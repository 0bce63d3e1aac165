import { type BalancePolicy, type Decision, type Measured, type PolicyOptions, describeMeasured, sharesFrom, withDefaults } from './policy.js';
import { largestChange } from './shares.js';

/** Shares from a short calibration of real timed steps at the start, then fixed for the run. */
export class ProportionalPolicy implements BalancePolicy {
  readonly name = 'proportional';
  private readonly o: Required<PolicyOptions>;

  constructor(options: PolicyOptions) {
    this.o = withDefaults(options);
  }

  decidesAt(step: number): boolean {
    return step === this.o.calibrationSteps;
  }

  decide(_step: number, current: readonly number[], m: Measured): Decision | null {
    const shares = sharesFrom(m, 'window', this.o.floorFraction / current.length, this.o.model);
    if (largestChange(shares, current) < this.o.deadband) return null;
    return { shares, reason: `calibration over ${this.o.calibrationSteps - 1} timed steps: ${describeMeasured(m, 'window')}` };
  }
}
