/** grpo's option table (src/config/options/grpo.ts) offers exactly the loss types and reward scalings rl/ computes. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { GRPO_LOSS_TYPES, GRPO_SCALE_REWARDS } from '../../../src/config/options/grpo.js';
import { SCALE_REWARDS } from '../../../src/rl/advantages.js';
import { LOSS_TYPES } from '../../../src/rl/grpo_loss.js';

it('--loss-type and --scale-rewards list what rl/ implements', () => {
  assert.deepEqual([...GRPO_LOSS_TYPES], [...LOSS_TYPES]);
  assert.deepEqual([...GRPO_SCALE_REWARDS], [...SCALE_REWARDS]);
});
