/**
 * What a reward is: a named function of one completion, `(prompt, completion, row) => number`
 * (or a promise of one), with a weight when several combine (combine.ts). `row` is the data set's row
 * the prompt came from (its answer field and anything else). A reward may hold a resource (a worker
 * thread) that `close` releases.
 */

/** A data set row, as read from JSONL. */
export type RewardRow = Readonly<Record<string, unknown>>;

export interface Reward {
  /** Named in metrics (`rewards/<name>/mean`) and in warnings. */
  readonly name: string;
  score(prompt: string, completion: string, row: RewardRow): number | Promise<number>;
  /** The deadline the reward enforces itself (a user module's worker), in ms; combine.ts then waits that long, and a little more. */
  readonly timeoutMs?: number;
  /** Releases what the reward holds (a worker thread); the reward scores nothing after. */
  close?(): Promise<void>;
}
