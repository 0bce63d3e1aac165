/**
 * Strategies whose ranks resume from files of their own (checkpoints.ts, per-rank state) must all
 * resume from the same step.
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import { SmolError } from '../../util/errors.js';
/** Ranks resuming from checkpoints of different steps would silently train different runs: refused, naming them. */
export async function checkSameStart(group: ProcessGroup, step: number): Promise<void> {
  if (group.size === 1) return;
  const all = await group.allGather(Float32Array.of(step));
  if (all.some((s) => s !== all[0])) {
    throw new SmolError('RESUME', `ranks resumed from different checkpoint steps (${[...all].map((s, r) => `rank ${r}: ${s}`).join(', ')}): resume every rank from the same step (each rank's files are in <checkpoint-dir>/rank-<r>/)`);
  }
}
