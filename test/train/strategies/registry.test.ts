import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { CLUSTER_STRATEGIES, type ClusterStrategyName, createClusterStrategy, strategySignature } from '../../../src/train/strategies/registry.js';

const OPTS = { checksumEvery: 0, peerTimeoutMs: 1000 };

describe('the strategy registry', () => {
  it('lists every strategy in the CLI\'s order and builds each by name, on every rank', () => {
    assert.deepEqual(CLUSTER_STRATEGIES, ['allreduce', 'ps', 'async-ps', 'diloco', 'local-sgd']);
    const transports = createInProcessTransports(2, { timeoutMs: 1000 });
    const built = CLUSTER_STRATEGIES.map((name) => transports.map((t) => createClusterStrategy(name, new ProcessGroup(t, { timeoutMs: 1000 }), OPTS)));
    assert.deepEqual(built.map((ranks) => ranks.map((s) => `${s.name}@${s.rank}`)), CLUSTER_STRATEGIES.map((n) => [`${n}@0`, `${n}@1`]));
    // A parameter server's ranks differ: the server and its workers.
    assert.deepEqual(built[1].map((s) => s.constructor.name), ['ParamServer', 'ParamServerWorker']);
    assert.deepEqual(built[2].map((s) => s.constructor.name), ['AsyncPsServer', 'AsyncPsWorker']);
  });

  it('signs what every process must agree on, and refuses an unknown name naming the known ones', () => {
    assert.equal(strategySignature('allreduce', OPTS), 'allreduce');
    assert.equal(strategySignature('allreduce', { ...OPTS, overlap: true, compression: 'powersgd', powerSgdRank: 2 }), 'allreduce(overlap,powersgd=2)');
    assert.equal(strategySignature('ps', { ...OPTS, psReply: 'gradients', serverTrains: true }), 'ps(gradients,server-trains)');
    assert.equal(strategySignature('async-ps', { ...OPTS, pushEvery: 4, quantize: 'int8' }), 'async-ps(k=4,s=4,int8)');
    assert.equal(strategySignature('diloco', { ...OPTS, innerSteps: 10 }), 'diloco(h=10,lr=0.7,m=0.9)');
    assert.equal(strategySignature('local-sgd', OPTS), 'local-sgd(h=50)');
    assert.throws(() => strategySignature('zero3' as ClusterStrategyName, OPTS), /unknown strategy "zero3" \(known: allreduce, ps, async-ps, diloco, local-sgd\)/);
  });
});
