import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CLI, TEST_TOKEN, freePort, stepRecords, tempDir } from '../helpers/cluster.js';

// OpenMPI's mpirun starts the workers (127.0.0.1): ranks and sizes come from OMPI_COMM_WORLD_*,
// threads from the cores mpirun bound each rank to divided by OMPI_COMM_WORLD_LOCAL_SIZE.
const hasMpirun = spawnSync('mpirun', ['--version'], { encoding: 'utf8' }).status === 0;

describe('mpirun -n 2 smolcluster worker (OpenMPI, 127.0.0.1)', { skip: !hasMpirun && process.env.CI !== 'true' ? 'mpirun not installed' : false, timeout: 120_000 }, () => {
  const dir = tempDir('mpirun');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('trains to completion; each rank says its placement came from OMPI_COMM_WORLD_*', async () => {
    const port = await freePort();
    // As root mpirun needs --allow-run-as-root; --oversubscribe lets 2 ranks share fewer cores.
    const r = spawnSync('mpirun', [
      '--allow-run-as-root', '--oversubscribe', '-n', '2', '-x', 'SMOLCLUSTER_TOKEN', '-x', 'MASTER_ADDR=127.0.0.1', '-x', `MASTER_PORT=${port}`,
      process.execPath, CLI, 'worker', '--max-steps', '8', '--checksum-every', '4', '--timeout', '30', '--experiments-dir', dir, '--name', 'mpi',
    ], { encoding: 'utf8', timeout: 100_000, env: { ...process.env, SMOLCLUSTER_TOKEN: TEST_TOKEN, RANK: undefined, WORLD_SIZE: undefined } });
    assert.equal(r.status, 0, r.stderr);
    for (const rank of [0, 1]) assert.match(r.stderr, new RegExp(`rank ${rank} of 2 \\(OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE\\).*local rank ${rank}, \\d+ threads? \\(.*OMPI_COMM_WORLD_LOCAL_SIZE\\)`));
    assert.match(r.stderr, /rank 1 joined from 127\.0\.0\.1:\d+ \(\d\/2\)/);
    for (const rank of [0, 1]) assert.equal(stepRecords(join(dir, 'mpi', 'metrics.jsonl'), rank).length, 8);
  });
});
