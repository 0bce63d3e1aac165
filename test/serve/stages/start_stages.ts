/** P pipeline stages of one model in one process, joined over real TCP on 127.0.0.1: the tests' pipeline. */
import { StoreServer } from '../../../src/comm/store/server.js';
import type { ModelSpec } from '../../../src/nn/models/index.js';
import { PipelinedBatch } from '../../../src/serve/stages/pipelined_batch.js';
import { type JoinedStage, joinStages, stageSignature } from '../../../src/serve/stages/stage_cluster.js';
import type { StageWeights } from '../../../src/parallel/pipeline/stage_weights.js';
import { runStageWorker } from '../../../src/serve/stages/stage_worker.js';
import type { Precision } from '../../../src/tensor/precision.js';

export const TOKEN = 'pipeline-test-token-0123456789';

export interface TestPipeline {
  /** Rank 0's batch: the driver. */
  driver: PipelinedBatch;
  /** Every rank's stage, by rank. */
  joined: JoinedStage[];
  /** Stops the stages and closes every connection and the store. */
  close(): Promise<void>;
}

/** P stages of the model `weights` hold, each loading only its own layers. */
export async function startStages(spec: ModelSpec, weights: StageWeights, P: number, o: { precision?: Precision } = {}): Promise<TestPipeline> {
  const store = await StoreServer.start({ host: '127.0.0.1', port: 0, token: TOKEN, worldSize: P, signature: stageSignature(spec, o.precision ?? 'fp32', weights) });
  const joined = await Promise.all(Array.from({ length: P }, (_, rank) => joinStages({
    spec, weights, stages: P, rank, masterHost: '127.0.0.1', masterPort: store.port, hostStore: false, token: TOKEN, timeoutMs: 20_000, maxBatch: 4, precision: o.precision,
  })));
  const workers = joined.slice(1).map((j) => runStageWorker({ transport: j.cluster.transport, rows: j.rows }));
  const driver = new PipelinedBatch(joined[0].cluster.transport, joined[0].rows, { timeoutMs: 20_000 });
  return {
    driver, joined,
    async close() {
      await driver.close();
      await Promise.all(workers);
      await Promise.all(joined.map((j) => j.cluster.close()));
      await store.close();
    },
  };
}
