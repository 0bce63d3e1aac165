import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { DelegatingStrategy } from '../../../src/train/strategies/delegating.js';
import { GradAccumulation } from '../../../src/train/strategies/grad_accum.js';
import { createParamServerStrategy } from '../../../src/train/strategies/param_server.js';
import { ZeroStrategy } from '../../../src/train/strategies/zero.js';
import type { StepWork } from '../../../src/train/loop/step.js';
import type { Strategy, StrategyContext } from '../../../src/train/strategies/strategy.js';

/**
 * Every member of the Strategy contract, once. `satisfies` makes this fail to compile when the
 * interface gains a member (missing key) or loses one (excess key), so the checks below always
 * cover the whole contract.
 */
const STRATEGY_KEYS = {
  name: true, rank: true, worldSize: true, setup: true, runStep: true, afterStep: true, gather: true, close: true,
  dataShard: true, hostOnly: true, sharesHealth: true,
  gradients: true, update: true, checkpointing: true, modelBuilder: true, evaluation: true, sharding: true, planning: true, leadership: true,
} as const satisfies Record<keyof Strategy, true>;

/** Compiles only when DelegatingStrategy declares every key of Strategy (a forgotten one is inherited from nowhere). */
type Unforwarded = Exclude<keyof Strategy, keyof DelegatingStrategy>;
const everyKeyDeclared: [Unforwarded] extends [never] ? true : false = true;

/** A strategy with every member present, each a distinct value, whose methods report their name and arguments. */
function fullStrategy(): Strategy {
  const called = (name: string) => async (...args: unknown[]) => ({ called: name, args });
  return {
    name: 'full', rank: 3, worldSize: 5,
    setup: called('setup'), runStep: called('runStep'), afterStep: called('afterStep'), gather: called('gather'), close: called('close'),
    dataShard: { index: 1, count: 4, compute: false }, hostOnly: 'kept on the host', sharesHealth: true,
    gradients: { reduceGradients: called('reduceGradients') }, update: { applyUpdate: called('applyUpdate') },
    checkpointing: { checkpointState: () => ({}) }, modelBuilder: { buildModel: called('buildModel') },
    evaluation: { evaluate: called('evaluate') }, sharding: { wholeModel: called('wholeModel'), shardModel: () => {} },
    planning: { stepsFor: (n: number) => n * 2 }, leadership: { isLeader: () => true },
  } as unknown as Strategy;
}

describe('the Strategy contract', () => {
  it('DelegatingStrategy forwards every member: values are the wrapped strategy\'s, methods call it with the same arguments', async () => {
    assert.equal(everyKeyDeclared, true);
    const inner = fullStrategy();
    const wrapper = new DelegatingStrategy(inner);
    for (const key of Object.keys(STRATEGY_KEYS) as (keyof Strategy)[]) {
      const own = inner[key];
      if (typeof own !== 'function') {
        assert.equal(wrapper[key], own, `${key} is not forwarded`);
        continue;
      }
      const method = wrapper[key] as (...a: unknown[]) => Promise<unknown>;
      const args = ['a', 7, 'b'].slice(0, method.length);
      assert.deepEqual(await method.call(wrapper, ...args), { called: key, args }, `${key} is not forwarded`);
    }
  });

  it('gradient accumulation over a parameter server keeps the server on the host and its shard (it forwards hostOnly, dataShard, update)', () => {
    const [t0] = createInProcessTransports(3, { timeoutMs: 1000 });
    const server = createParamServerStrategy(new ProcessGroup(t0, { timeoutMs: 1000 }));
    const accum = new GradAccumulation(server);
    assert.ok(server.hostOnly);
    assert.equal(accum.hostOnly, server.hostOnly);
    assert.deepEqual(accum.dataShard, server.dataShard);
    assert.equal(accum.update, server.update);
    assert.equal(accum.gradients, server.gradients);
  });

  it('a strategy that owns its step has no gradient exchange to call (ZeRO: no member that only throws)', () => {
    const [t] = createInProcessTransports(1, { timeoutMs: 1000 });
    const zero = new ZeroStrategy(new ProcessGroup(t, { timeoutMs: 1000 }), { stage: 1 });
    assert.equal((zero as Strategy).gradients, undefined);
    assert.equal('reduceGradients' in zero, false);
    assert.throws(() => new GradAccumulation(zero), /owns its steps already/);
  });

  it('a wrapper overrides only what it changes: GradAccumulation runs the step, the rest is the wrapped strategy\'s', async () => {
    const inner = fullStrategy();
    const ctx = {} as StrategyContext;
    const work = { batch: null, microSize: 4 } as unknown as StepWork;
    // The full fixture writes its own runStep: it owns its step, so it cannot be accumulated.
    assert.throws(() => new GradAccumulation(inner), /strategy full owns its steps already/);
    assert.deepEqual(await new DelegatingStrategy(inner).runStep(ctx, work), { called: 'runStep', args: [ctx, work] });
  });
});
