/**
 * The reference for the cluster tests: federated averaging in one process, a plain loop over the
 * shards with no scheduler, wire or nodes (not a test file). The cluster must give the same bits.
 */
import { buildLettersModel, evaluateShard, fitShard } from '../../src/cluster/letters_model.js';
import type { LettersData } from '../../src/data/letters.js';

export interface Reference {
  validationErrors: number[];
  weightsChecksum: string;
}

export function fedavgInProcess(data: LettersData, job: { rounds: number; epochs: number; hidden: number; lr: number; seed: number }): Reference {
  const model = buildLettersModel(job.hidden, job.seed);
  const global = model.arena().data.slice();
  const worker = buildLettersModel(job.hidden, 0);
  const validationErrors: number[] = [];
  const n = data.train.length;
  for (let r = 0; r < job.rounds; r++) {
    const sum = new Float64Array(global.length);
    for (const shard of data.train) {
      const { delta } = fitShard(worker, global, shard, job.epochs, job.lr);
      for (let i = 0; i < sum.length; i++) sum[i] += (1 / n) * delta[i];
    }
    for (let i = 0; i < global.length; i++) global[i] += sum[i];
    validationErrors.push(evaluateShard(model, global, data.validation));
  }
  return { validationErrors, weightsChecksum: model.arena().checksum() };
}
