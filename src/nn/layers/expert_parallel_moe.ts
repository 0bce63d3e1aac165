import { type GroupExchanger, exchangeRows } from '../../tensor/group_exchange.js';
import { embedding } from '../../tensor/ops/embedding.js';
import { concat } from '../../tensor/ops/layout.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { SparseMoeBlock } from './sparse_moe.js';

/**
 * Expert parallelism (GShard, Lepikhin et al. 2020): a mixture of experts whose experts are split
 * over a group, rank p owning experts [p·E/P, (p+1)·E/P). Each rank routes its own tokens, sends
 * every (token, choice) row to the rank owning its expert (an all-to-all), runs its experts on the
 * rows it receives from every rank, sends the outputs back (the reverse all-to-all) and mixes them
 * as one process would: the rows travel in expert order, so the stacked outputs come back in the
 * order the whole-model block stacks them. Backward runs the two exchanges in reverse.
 *
 * The block holds every expert's weights (built from one seed on every rank) but runs only its own;
 * their gradients are complete on the owner (every rank's tokens passed through them there).
 */
export async function expertParallelForward(block: SparseMoeBlock, x: Tensor, group: GroupExchanger): Promise<Tensor> {
  const { experts, topK } = block.moe;
  const P = group.size;
  if (experts % P !== 0) throw new Error(`expert parallelism: ${experts} experts do not split over ${P} ranks`);
  const perRank = experts / P;
  const r = block.route(x);
  // Rows to send, in expert order; how many each expert gets, told to its owner first.
  const slots = r.slotsOf.flatMap((s) => [...s]);
  const dispatched = embedding(r.flat, Int32Array.from(slots, (slot) => Math.floor(slot / topK)), [slots.length]);
  const perExpert = r.slotsOf.map((s) => s.length);
  const counts = await group.exchange(Float32Array.from(perExpert), Array(P).fill(perRank), Array(P).fill(perRank));
  const sendRows = Array.from({ length: P }, (_, p) => sum(perExpert.slice(p * perRank, (p + 1) * perRank)));
  const fromRank = Array.from({ length: P }, (_, q) => Array.from(counts.subarray(q * perRank, (q + 1) * perRank)));
  const recvRows = fromRank.map(sum);
  const received = await exchangeRows(dispatched, sendRows, recvRows, group);
  // Received rows: rank q's block, within it expert by expert. Each own expert takes its rows from every block.
  const starts = blockStarts(fromRank.flat());
  const outputs: Tensor[] = [];
  const order: number[] = [];
  for (let j = 0; j < perRank; j++) {
    const rows: number[] = [];
    for (let q = 0; q < P; q++) for (let i = 0; i < fromRank[q][j]; i++) rows.push(starts[q * perRank + j] + i);
    if (rows.length === 0) continue;
    outputs.push(block.expert(group.rank * perRank + j).forward(embedding(received, Int32Array.from(rows), [rows.length])));
    order.push(...rows);
  }
  // Back to the received order (rank-major), then home.
  const positionOf = new Int32Array(order.length);
  order.forEach((row, i) => (positionOf[row] = i));
  const computed = outputs.length ? embedding(concat(outputs, 0), positionOf, [order.length]) : received;
  const returned = await exchangeRows(computed, recvRows, sendRows, group);
  return block.finish(x, returned, r);
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function blockStarts(counts: readonly number[]): number[] {
  let at = 0;
  return counts.map((c) => ((at += c), at - c));
}
