/** grpo's option tables (src/config/options/grpo.ts) offer exactly the loss types, reward scalings, task splits and importance-sampling modes rl/ computes. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { GRPO_IMPORTANCE_SAMPLING_MODES, GRPO_LOSS_TYPES, GRPO_SCALE_REWARDS, GRPO_TASK_SPLITS } from '../../../src/config/options/grpo.js';
import { SCALE_REWARDS } from '../../../src/rl/advantages.js';
import { LOSS_TYPES } from '../../../src/rl/grpo_loss.js';
import { IMPORTANCE_SAMPLING_MODES } from '../../../src/rl/importance.js';
import { TASK_SPLITS } from '../../../src/rl/tasks/task_data.js';

it('--loss-type, --scale-rewards, --importance-sampling-mode and task-data --split list what rl/ implements', () => {
  assert.deepEqual([...GRPO_LOSS_TYPES], [...LOSS_TYPES]);
  assert.deepEqual([...GRPO_SCALE_REWARDS], [...SCALE_REWARDS]);
  assert.deepEqual([...GRPO_TASK_SPLITS], [...TASK_SPLITS]);
  assert.deepEqual([...GRPO_IMPORTANCE_SAMPLING_MODES], [...IMPORTANCE_SAMPLING_MODES]);
});
