/** Load balancing: batch-share policies and the balancer that applies them across ranks. */
import type { ProcessGroup } from '../comm/process_group.js';
import { ConfigError } from '../util/errors.js';
import { Balancer, type RebalanceEvent, type ShardOf } from './balancer.js';
import { DynamicPolicy } from './dynamic.js';
import { HybridPolicy } from './hybrid.js';
import { type BalanceModel, type BalancePolicy, DEFAULT_BALANCE_MODEL, type PolicyName, type PolicyOptions } from './policy.js';
import { ProportionalPolicy } from './proportional.js';
import { CapacityMeter } from './capacity.js';
import { procCpuSource } from './cpu_source.js';

export { BALANCE_MODELS, POLICIES, type BalanceModel, type BalancePolicy, type PolicyName, type PolicyOptions, type Measured, type Decision } from './policy.js';
export { Balancer, type RebalanceEvent, type ShardOf } from './balancer.js';
export { CapacityMeter, type CapacityOptions, type CapacityReading } from './capacity.js';
export { procCpuSource, type CpuSource, type CpuTimes } from './cpu_source.js';

export function makePolicy(name: PolicyName, o: PolicyOptions): BalancePolicy {
  switch (name) {
    case 'proportional':
      return new ProportionalPolicy(o);
    case 'dynamic':
      return new DynamicPolicy(o);
    case 'hybrid':
      return new HybridPolicy(o);
  }
}

export interface BalanceFlags {
  enableLoadBalancing?: boolean;
  loadBalancePolicy?: PolicyName;
  rebalanceInterval?: number;
  balanceModel?: BalanceModel;
}

function policyFromFlags(f: BalanceFlags): BalancePolicy {
  return makePolicy(f.loadBalancePolicy ?? 'dynamic', { rebalanceInterval: f.rebalanceInterval ?? 10, model: f.balanceModel ?? DEFAULT_BALANCE_MODEL });
}

/** What every process must agree on about balancing (joins the cluster signature). */
export function balanceSignature(f: BalanceFlags): string {
  return f.enableLoadBalancing ? `balance(${f.loadBalancePolicy ?? 'dynamic'},k=${f.rebalanceInterval ?? 10},${f.balanceModel ?? DEFAULT_BALANCE_MODEL})` : 'balance(off)';
}

/** The balancer the flags ask for over `group`, for a strategy that trains `shard` (null: balancing off). */
export function balancerFromFlags(
  f: BalanceFlags, strategyName: string, group: ProcessGroup, shard: ShardOf, onRebalance: (e: RebalanceEvent) => void,
): Balancer | null {
  if (!f.enableLoadBalancing) return null;
  if (strategyName === 'async-ps') {
    // async-ps balances inside the strategy: workers claim batches by push cadence (train/strategies/async_ps_leases.ts).
    if (f.loadBalancePolicy && f.loadBalancePolicy !== 'dynamic') {
      throw new ConfigError('command line', '--load-balance-policy', `async-ps balances by push cadence (each worker claims its next --push-every batches when it pushes), not by ${f.loadBalancePolicy} shares; leave the policy at dynamic`);
    }
    return null;
  }
  return new Balancer(group, policyFromFlags(f), shard, onRebalance, new CapacityMeter(procCpuSource()));
}

/** An elastic run's balancer (flags as above): its group is each membership's, given as members change (Balancer.regroup). */
export function elasticBalancerFromFlags(f: BalanceFlags, onRebalance: (e: RebalanceEvent) => void): Balancer | null {
  if (!f.enableLoadBalancing) return null;
  return new Balancer(null, policyFromFlags(f), { index: 0, count: 1, compute: true }, onRebalance, new CapacityMeter(procCpuSource()));
}

/** A decision as one line for stderr: "step 20: shares 50.0%/50.0% → 75.0%/25.0% (reason)". */
export function rebalanceLine(e: RebalanceEvent): string {
  const pct = (share: number): string => `${(share * 100).toFixed(1)}%`;
  return `step ${e.step}: shares ${e.old_shares.map(pct).join('/')} → ${e.shares.map(pct).join('/')} (${e.reason})`;
}
