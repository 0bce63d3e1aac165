/**
 * The zero-config join flags refused before anything is multicast (real processes, 127.0.0.1 only):
 * each wrong combination ends with one error line naming the flag. What discovery does on a
 * network is test/launch/discovery/netns.test.ts's (inside namespaces it creates).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TEST_TOKEN, errorLines, freePort, runCliProcess } from '../helpers/cluster.js';

const env = { SMOLCLUSTER_TOKEN: TEST_TOKEN };
const quick = ['--threads', '1', '--max-steps', '2', '--timeout', '5'];

async function oneError(args: string[]): Promise<string> {
  const r = await runCliProcess(args, { env, timeoutMs: 30_000 });
  assert.notEqual(r.code, 0, r.stderr);
  assert.equal(r.timedOut, false);
  assert.doesNotMatch(r.stderr, /advertising cluster|^\s+at /m, r.stderr);
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, r.stderr);
  return lines[0];
}

describe('zero-config join flags refused up front', { concurrency: true, timeout: 60_000 }, () => {
  it('--advertise on a store that listens on loopback names --master (worker) and --bind-host (store)', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const [worker, store] = await Promise.all([
      oneError(['worker', '--rank', '0', '--world-size', '2', '--master', `127.0.0.1:${p1}`, '--advertise', ...quick]),
      oneError(['store', '--world-size', '2', '--master', `127.0.0.1:${p2}`, '--advertise']),
    ]);
    assert.match(worker, /\(--advertise\): the rendezvous store listens on 127\.0\.0\.1:\d+, which other machines cannot reach; listen on the LAN \(--master <this host's LAN address>:\d+\) to advertise it/);
    assert.match(store, /\(--advertise\): .*listen on the LAN \(--bind-host 0\.0\.0\.0, or this host's address\)/);
  });

  it('--discover with --rank, --advertise on rank 1, and --cluster-name alone are refused naming the flag', async () => {
    const port = await freePort();
    const [withRank, notMaster, nameAlone] = await Promise.all([
      oneError(['worker', '--discover', '--rank', '1', ...quick]),
      oneError(['worker', '--rank', '1', '--world-size', '2', '--master', `127.0.0.1:${port}`, '--advertise', ...quick]),
      oneError(['worker', '--rank', '0', '--world-size', '1', '--master', `127.0.0.1:${port}`, '--cluster-name', 'lab', ...quick]),
    ]);
    assert.match(withRank, /\(--discover\): cannot be combined with --rank/);
    assert.match(notMaster, /\(--advertise\): only the process hosting the rendezvous store advertises it .*this is rank 1/);
    assert.match(nameAlone, /\(--cluster-name\): names the cluster on the LAN/);
  });
});
