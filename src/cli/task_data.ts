import { Command } from 'commander';
import { TASK_DATA_OPTIONS, type OptionValues } from '../config/options/index.js';
import { writeTaskData } from '../rl/tasks/task_data.js';
import { ConfigError } from '../util/errors.js';
import { addOptions } from './option_table.js';

type TaskDataFlags = OptionValues<typeof TASK_DATA_OPTIONS>;

/**
 * `smolcluster task-data --task addition:2 --out sft.jsonl`: a built-in task's training (or
 * held-out) split as JSONL — prompt, completion, answer — for `train` to learn from before
 * `grpo --task` with the same --task, --held-out and --seed (docs/RL.md). The training split never
 * holds a problem of the held-out one.
 */
export function taskDataCommand(): Command {
  const cmd = new Command('task-data').description('write a built-in GRPO task\'s training or held-out split as prompt/completion JSONL, for train (docs/RL.md)');
  return addOptions(cmd, TASK_DATA_OPTIONS).action((f: TaskDataFlags) => {
    if (f.task === undefined) throw new ConfigError('command line', '--task', 'task-data needs --task NAME (addition, or addition:DIGITS)');
    if (f.out === undefined) throw new ConfigError('command line', '--out', 'task-data needs --out FILE.jsonl');
    const count = writeTaskData(f.out, { task: f.task, size: f.taskSize, heldOut: f.heldOut, seed: f.seed, split: f.split });
    const split = f.split === 'train' ? `${count} training problems (${f.heldOut} held out)` : `${count} held-out problems`;
    process.stdout.write(`task-data: ${split} of ${f.task}, seed ${f.seed} → ${f.out}\n`);
  });
}
