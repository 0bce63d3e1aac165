/**
 * Did an elastic run train on every sample exactly once per epoch? Checked from metrics.jsonl alone
 * (the per-step records of the elastic all-reduce strategy): for every step number the records of
 * the newest membership epoch count (older ones were rolled back and retaken); each member's record
 * must hold the sum of exactly the dataset indices at its positions of that step's global batch in
 * the seeded order (elastic_cursor.ts) — a member killed right after finishing a step may lack its
 * record (counted as unrecorded) — and the global
 * batches of each data epoch must tile the epoch: start at 0, follow each other, end at its size.
 */
import { readFileSync } from 'node:fs';
import { Rng } from '../util/rng.js';

interface ElasticStep {
  step: number;
  rank: number;
  samples: number;
  member_epoch: number;
  members: number;
  member_rank: number;
  data_epoch: number;
  data_offset: number;
  data_global: number;
  index_sum: number;
}

export interface ExactlyOnceReport {
  /** Data epochs whose every sample was trained on exactly once. */
  epochsExact: number;
  /** Data epochs seen (the last one may be incomplete when the run stopped early). */
  epochsSeen: number;
  /** Steps kept (the newest record set of each step number). */
  steps: number;
  /** Records superseded by a retaken step (rolled back). */
  supersededRecords: number;
  /**
   * Member shares of kept steps with no record: the member finished the step's all-reduce (which
   * cannot complete without its gradient) and was killed before writing the record. The tiling and
   * the other members' sums still account for every position; these shares are inferred, not read.
   */
  unrecordedShares: number;
  problems: string[];
}

export function checkExactlyOnce(metricsFile: string, datasetSize: number, seed: number): ExactlyOnceReport {
  const records = readFileSync(metricsFile, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as ElasticStep & { kind: string })
    .filter((r) => r.kind === 'step' && typeof r.member_epoch === 'number');
  const byStep = new Map<number, ElasticStep[]>();
  for (const r of records) byStep.set(r.step, [...(byStep.get(r.step) ?? []), r]);
  const problems: string[] = [];
  let superseded = 0;
  let unrecorded = 0;
  const finals: ElasticStep[][] = [];
  for (const [step, rs] of [...byStep].sort((a, b) => a[0] - b[0])) {
    const newest = Math.max(...rs.map((r) => r.member_epoch));
    const kept = rs.filter((r) => r.member_epoch === newest);
    superseded += rs.length - kept.length;
    const ranks = new Set(kept.map((r) => r.member_rank));
    if (ranks.size !== kept.length || kept.some((r) => r.members !== kept[0].members || r.member_rank >= r.members)) {
      problems.push(`step ${step}: inconsistent records of membership epoch ${newest}`);
    }
    unrecorded += kept[0].members - ranks.size;
    finals.push(kept);
  }
  const orders = new Map<number, Int32Array>();
  const order = (e: number): Int32Array => {
    if (!orders.has(e)) orders.set(e, Rng.derive(seed, e).permutation(datasetSize));
    return orders.get(e)!;
  };
  const tiles = new Map<number, Array<[number, number]>>();
  for (const kept of finals) {
    const { data_epoch: e, data_offset: off, data_global: g, members: n } = kept[0];
    tiles.set(e, [...(tiles.get(e) ?? []), [off, g]]);
    // Equal shares interleave the global batch (DistributedSampler's order); balanced shares cut it
    // into contiguous slices in member order (elastic_cursor.ts): either must account for every rank.
    const interleaved = kept.map((r) => slice(order(e), off + r.member_rank, off + g, n));
    const byRank = [...kept].sort((a, b) => a.member_rank - b.member_rank);
    let from = off;
    const contiguous = new Map(byRank.map((r) => {
      const at = from;
      from += r.samples;
      return [r, slice(order(e), at, Math.min(at + r.samples, off + g), 1)];
    }));
    const fits = (r: ElasticStep, t: { sum: number; count: number }): boolean => t.sum === r.index_sum && t.count === r.samples;
    const useContiguous = !kept.every((r, i) => fits(r, interleaved[i])) && from === off + g;
    kept.forEach((r, i) => {
      const t = useContiguous ? contiguous.get(r)! : interleaved[i];
      if (!fits(r, t)) problems.push(`step ${r.step} rank ${r.rank}: trained on ${r.samples} samples (index sum ${r.index_sum}), its share is ${t.count} (sum ${t.sum})`);
    });
  }
  let exact = 0;
  for (const [e, list] of [...tiles].sort((a, b) => a[0] - b[0])) {
    list.sort((a, b) => a[0] - b[0]);
    let at = 0;
    let ok = true;
    for (const [off, g] of list) {
      if (off !== at) {
        problems.push(`data epoch ${e}: a global batch starts at ${off}, expected ${at} (${off > at ? 'samples skipped' : 'samples seen twice'})`);
        ok = false;
      }
      at = off + g;
    }
    if (at === datasetSize && ok) exact++;
    else if (ok && e < Math.max(...tiles.keys())) problems.push(`data epoch ${e}: ends at ${at} of ${datasetSize}`);
  }
  return { epochsExact: exact, epochsSeen: tiles.size, steps: finals.length, supersededRecords: superseded, unrecordedShares: unrecorded, problems };
}

/** Sum and count of order[p] for p = from, from + stride, … below `to`. */
function slice(order: Int32Array, from: number, to: number, stride: number): { sum: number; count: number } {
  let sum = 0;
  let count = 0;
  for (let p = from; p < to; p += stride) {
    sum += order[p];
    count++;
  }
  return { sum, count };
}
