/**
 * A built-in task's split as data for other commands (`smolcluster task-data`): one JSON object a
 * line with the `prompt`, the `completion` a solver writes and the `answer`. `train` reads such a
 * file as plain prompt/completion data (docs/FINETUNE.md: the completion is learned, not the prompt);
 * `grpo --data-file` and `--eval-file` read the prompt and the answer. The rows are exactly the
 * ones `grpo --task` generates from the same task, sizes and seed; the training split never holds a
 * held-out problem (tasks/addition.ts draws the held-out ones first).
 */
import { writeFileSync } from 'node:fs';
import { additionCompletion, additionDigits, additionTask } from './addition.js';

export const TASK_SPLITS = ['train', 'held-out'] as const;
export type TaskSplitName = (typeof TASK_SPLITS)[number];

export interface TaskDataOptions {
  /** `addition[:DIGITS]`, as `grpo --task` names it. */
  task: string;
  /** Training problems (`--task-size`). */
  size: number;
  /** Held-out problems (`--held-out`). */
  heldOut: number;
  seed: number;
  split: TaskSplitName;
}

export interface TaskDataRow {
  prompt: string;
  completion: string;
  answer: number;
}

/** The split's rows, in the order `grpo --task` holds them. */
export function taskDataRows(o: TaskDataOptions): TaskDataRow[] {
  // The held-out split does not depend on the training split's size (it is drawn first).
  const split = additionTask(additionDigits(o.task), o.split === 'train' ? o.size : 0, o.heldOut, o.seed);
  const rows = o.split === 'train' ? split.train : split.heldOut;
  return rows.map((row) => ({ prompt: row.prompt, completion: additionCompletion(row), answer: row.answer }));
}

/** Writes the split to `file` as JSONL; returns how many rows. */
export function writeTaskData(file: string, o: TaskDataOptions): number {
  const rows = taskDataRows(o);
  writeFileSync(file, rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  return rows.length;
}
