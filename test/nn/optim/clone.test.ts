/**
 * Optimizer.cloneOver: the same kind and settings over another arena of the same layout (a GPU ps
 * worker's host replica, train/strategies/ps_host_replica.ts) steps bit for bit as the original.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Optimizer, makeOptimizer } from '../../../src/nn/optim/index.js';
import type { ParamArena } from '../../../src/nn/arena.js';
import { GRADS, LRS, arenaOf } from './common.js';

const CONFIGS = [
  { name: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 },
  { name: 'adam', lr: 0.1, weightDecay: 0.01 },
  { name: 'adamw', lr: 0.1, weightDecay: 0.05 },
] as const;

function run(arena: ParamArena, opt: Optimizer): number[][] {
  return GRADS.map((g, i) => {
    arena.grads.readSync().set(g);
    opt.lr = LRS[i];
    opt.step();
    return Array.from(arena.params.readSync());
  });
}

describe('Optimizer.cloneOver', () => {
  for (const c of CONFIGS) {
    it(`${c.name}: the clone over a fresh arena takes the same steps, bit for bit`, () => {
      const a = arenaOf();
      const original = makeOptimizer(a, c);
      const b = arenaOf();
      const clone = original.cloneOver(b);
      assert.equal(clone.constructor, original.constructor);
      assert.deepEqual(run(b, clone), run(a, original));
    });
  }

  it('carries the step count and LR (Adam\'s bias correction, momentum\'s first step), not the state', () => {
    const a = arenaOf();
    const original = makeOptimizer(a, { name: 'adam', lr: 0.3 });
    a.grads.readSync().set(GRADS[0]);
    original.step();
    assert.ok(original.stateBuffers()[0].some((v) => v !== 0));
    const clone = original.cloneOver(arenaOf());
    assert.equal(clone.steps, 1);
    assert.equal(clone.lr, 0.3);
    assert.ok(clone.stateBuffers().every((s) => s.every((v) => v === 0)), 'state starts zeroed');
  });
});
