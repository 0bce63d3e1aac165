/**
 * A verifiable task that needs no download (`grpo --task addition[:DIGITS]`): sums of two numbers
 * of up to DIGITS digits (default 2), generated from the seed, the answer checked by exact-number.
 * The prompt asks for the answer after `####`, GSM8K's convention, so the same reward reads it. A
 * held-out split (`heldOut` problems) shares no problem with the training prompts; it is drawn first,
 * so it depends on the digits, its size and the seed only: training splits of any size leave it out
 * (what `smolcluster task-data` relies on to write supervised data for `train`).
 */
import { Rng } from '../../util/rng.js';

export interface TaskRow {
  prompt: string;
  answer: number;
}

export interface TaskSplit {
  train: TaskRow[];
  heldOut: TaskRow[];
}

/** `addition` or `addition:D` → the digits (1–9); anything else is not a task. */
export function additionDigits(name: string): number {
  const m = /^addition(?::(\d+))?$/.exec(name);
  if (!m) throw new Error(`--task ${name}: not a built-in task (addition, or addition:DIGITS)`);
  const digits = m[1] === undefined ? 2 : Number(m[1]);
  if (!(digits >= 1 && digits <= 9)) throw new Error(`--task ${name}: the digits must be 1 to 9`);
  return digits;
}

/**
 * `heldOut` problems, then `size` others for training, distinct, from the seed. The held-out ones
 * come first, so the held-out split of a seed does not change with `size`.
 */
export function additionTask(digits: number, size: number, heldOut: number, seed: number): TaskSplit {
  const max = 10 ** digits;
  if (size + heldOut > max * max) throw new RangeError(`addition:${digits} has ${max * max} problems, fewer than ${size + heldOut} asked`);
  const rng = new Rng(seed);
  const seen = new Set<number>();
  const rows: TaskRow[] = [];
  while (rows.length < size + heldOut) {
    const [a, b] = [rng.int(max), rng.int(max)];
    if (seen.has(a * max + b)) continue;
    seen.add(a * max + b);
    rows.push({ prompt: `What is ${a} + ${b}? Give the answer after ####.\n`, answer: a + b });
  }
  return { heldOut: rows.slice(0, heldOut), train: rows.slice(heldOut) };
}

/**
 * The completion a solver writes, what `task-data` gives `train` to learn: the answer after `####`,
 * then a newline that ends it (a tokenizer without an end-of-text token, as `bytes`, has no other
 * way to say the answer is over).
 */
export function additionCompletion(row: TaskRow): string {
  return `#### ${row.answer}\n`;
}
