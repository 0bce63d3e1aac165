/**
 * launch/worker_cluster.ts: how a worker process joins its cluster. --comm-backend picks the
 * transport: auto upgrades ranks on one host to shared memory, tcp keeps every link on TCP (and
 * --backend gloo, torch.distributed's spelling, changes nothing).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { shmNative } from '../../src/launch/shm_native.js';
import { ShmTransport } from '../../src/comm/shm/transport.js';
import { TOKEN_ENV } from '../../src/comm/token.js';
import { type JoinedCluster, joinCluster } from '../../src/launch/worker_cluster.js';
import { LAUNCHER_STORE_ENV } from '../../src/launch/worker_flags.js';
import type { CommBackend } from '../../src/config/options/choices.js';
import { TEST_TOKEN, freePort } from '../helpers/cluster.js';

const skip = shmNative() || process.env.CI === 'true' ? false : 'the native addon has no shared memory here (not Linux, or not built)';

/** Two ranks of one process join a cluster on 127.0.0.1 (rank 0 hosts the store). */
async function joinTwo(commBackend: CommBackend | undefined): Promise<JoinedCluster[]> {
  const masterPort = await freePort();
  const joined = await Promise.all([0, 1].map((rank) => joinCluster({
    flags: { commBackend }, place: { rank, worldSize: 2, masterHost: '127.0.0.1', masterPort }, signature: 'test', timeoutMs: 10_000,
    recoverable: false, rejoined: () => {},
  })));
  return joined.map((j) => {
    assert.notEqual(j, 'over');
    return j as JoinedCluster;
  });
}

describe('joining a cluster: the communication backend', () => {
  const saved = { token: process.env[TOKEN_ENV], launcher: process.env[LAUNCHER_STORE_ENV] };
  before(() => {
    process.env[TOKEN_ENV] = TEST_TOKEN;
    delete process.env[LAUNCHER_STORE_ENV];
  });
  after(() => {
    for (const [k, v] of [[TOKEN_ENV, saved.token], [LAUNCHER_STORE_ENV, saved.launcher]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  for (const [backend, shared] of [[undefined, true], ['auto', true], ['tcp', false]] as const) {
    it(`--comm-backend ${backend ?? '(default)'}: ranks on one host ${shared ? 'share memory' : 'stay on TCP'}`, { skip }, async () => {
      const joined = await joinTwo(backend);
      try {
        for (const j of joined) assert.equal(j.cluster.group.transport instanceof ShmTransport, shared);
      } finally {
        await Promise.all(joined.map((j) => j.leave()));
      }
    });
  }
});
