/**
 * Federated averaging in one plain loop — no wire, no nodes, no scheduler: the reference a cluster
 * job must equal bit for bit (the tests compare with it; bench:federated times it beside the
 * cluster). Deltas are combined in task order with equal weights, as `aggregate.ts` does.
 */
import { buildLettersModel, evaluateShard, fitShard } from './letters_model.js';
import type { LettersData } from '../data/letters.js';

export interface ReferenceJob {
  rounds: number;
  epochs: number;
  hidden: number;
  lr: number;
  seed: number;
}

export interface ReferenceRun {
  /** Validation error after each round. */
  validationErrors: number[];
  /** FNV-1a of the final weights (as JobResult.weightsChecksum). */
  weightsChecksum: string;
}

export async function fedavgInProcess(data: LettersData, job: ReferenceJob): Promise<ReferenceRun> {
  const model = buildLettersModel(job.hidden, job.seed);
  const global = await model.arena().params.read();
  const validationErrors: number[] = [];
  const n = data.train.length;
  for (let r = 0; r < job.rounds; r++) {
    const sum = new Float64Array(global.length);
    for (const shard of data.train) {
      const { delta } = await fitShard({ hidden: job.hidden, start: global, shard, epochs: job.epochs, lr: job.lr });
      for (let i = 0; i < sum.length; i++) sum[i] += (1 / n) * delta[i];
    }
    for (let i = 0; i < global.length; i++) global[i] += sum[i];
    validationErrors.push(await evaluateShard(model, global, data.validation));
  }
  return { validationErrors, weightsChecksum: await model.arena().checksum() };
}
