/** Load balancing: batch-share policies and the balancer that applies them across ranks. */
import type { ProcessGroup } from '../comm/process_group.js';
import { ConfigError } from '../util/errors.js';
import { Balancer, type RebalanceEvent, type ShardOf } from './balancer.js';
import { DynamicPolicy } from './dynamic.js';
import { HybridPolicy } from './hybrid.js';
import type { BalancePolicy, PolicyName, PolicyOptions } from './policy.js';
import { ProportionalPolicy } from './proportional.js';

export { POLICIES, type BalancePolicy, type PolicyName, type PolicyOptions, type Measured, type Decision } from './policy.js';
export { Balancer, type RebalanceEvent, type ShardOf } from './balancer.js';

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
}

/** What every process must agree on about balancing (joins the cluster signature). */
export function balanceSignature(f: BalanceFlags): string {
  return f.enableLoadBalancing ? `balance(${f.loadBalancePolicy ?? 'dynamic'},k=${f.rebalanceInterval ?? 10})` : 'balance(off)';
}

/** The balancer the flags ask for over `group`, for a strategy that trains `shard` (null: balancing off). */
export function balancerFromFlags(
  f: BalanceFlags, strategyName: string, group: ProcessGroup, shard: ShardOf, onRebalance: (e: RebalanceEvent) => void,
): Balancer | null {
  if (!f.enableLoadBalancing) return null;
  if (strategyName === 'async-ps') {
    throw new ConfigError('command line', '--enable-load-balancing', 'async-ps is not balanced (its workers already push at their own pace); use allreduce or ps');
  }
  const policy = makePolicy(f.loadBalancePolicy ?? 'dynamic', { rebalanceInterval: f.rebalanceInterval ?? 10 });
  return new Balancer(group, policy, shard, onRebalance);
}
