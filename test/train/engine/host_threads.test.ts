import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ADDRESS_KEY } from '../../../src/comm/rendezvous.js';
import { fitThreadsToHost, ranksSharingHost, shareOfCores } from '../../../src/train/engine/host_threads.js';
import { backend } from '../../../src/tensor/dispatch.js';

function storeOf(addresses: string[]): { get(key: string): Promise<Uint8Array> } {
  return { get: async (key) => new TextEncoder().encode(addresses[Number(key.slice(ADDRESS_KEY.length))]) };
}

describe('threads of ranks sharing a host', () => {
  it('counts the ranks whose data address names this rank\'s host', async () => {
    const store = storeOf(['10.0.0.1:4000', '10.0.0.1:4001', '10.0.0.2:4000', '[::1]:5000']);
    assert.equal(await ranksSharingHost(store, 0, 4, 100), 2);
    assert.equal(await ranksSharingHost(store, 2, 4, 100), 1);
    assert.equal(await ranksSharingHost(store, 3, 4, 100), 1);
  });

  it('never gives a rank more than its share of the cores, nor less than one thread', () => {
    assert.equal(shareOfCores(2, 2, 2), 1);
    assert.equal(shareOfCores(1, 2, 2), 1);
    assert.equal(shareOfCores(8, 2, 16), 8);
    assert.equal(shareOfCores(16, 2, 16), 8);
    assert.equal(shareOfCores(4, 3, 2), 1);
  });

  it('two by-hand workers on 2 cores: the one that chose 2 threads drops to 1 and says why', async () => {
    const before = backend().getThreads();
    try {
      backend().setThreads(2);
      if (backend().getThreads() !== 2) return; // a backend without a thread pool has nothing to cut
      const line = await fitThreadsToHost({ store: storeOf(['127.0.0.1:4000', '127.0.0.1:4001']), rank: 0, size: 2, timeoutMs: 100, cores: 2 });
      assert.equal(backend().getThreads(), 1);
      assert.equal(line, '2 ranks share this host\'s 2 cores: 1 thread each, not the 2 chosen alone');
      assert.equal(await fitThreadsToHost({ store: storeOf(['127.0.0.1:4000', '127.0.0.1:4001']), rank: 1, size: 2, timeoutMs: 100, cores: 2 }), null);
    } finally {
      backend().setThreads(before);
    }
  });
});
