import { ConfigError } from '../../util/errors.js';
import { LeastLoadedPolicy } from './least_loaded.js';
import { POLICY_NAMES, type PolicyName, type SchedulingPolicy } from './policy.js';
import { RandomPolicy } from './random.js';
import { RoundRobinPolicy } from './round_robin.js';

export { POLICY_NAMES, type PolicyName, type SchedulingPolicy, type NodeView, type Choice } from './policy.js';

/** The original's numbers: 1 = random, 2 = load balancing; 3 = the round-robin its README promised. */
const BY_NUMBER: Record<string, PolicyName> = { '1': 'random', '2': 'least-loaded', '3': 'round-robin' };

export function parsePolicy(value: string): PolicyName {
  const name = BY_NUMBER[value] ?? value;
  if (!(POLICY_NAMES as readonly string[]).includes(name)) {
    throw new ConfigError('command line', 'policy', `unknown policy "${value}": use random (1), least-loaded (2) or round-robin (3)`);
  }
  return name as PolicyName;
}

export function makePolicy(name: PolicyName, seed: number): SchedulingPolicy {
  if (name === 'random') return new RandomPolicy(seed);
  if (name === 'round-robin') return new RoundRobinPolicy();
  return new LeastLoadedPolicy();
}
