import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, TEST_TOKEN, freePort, sleep, stepRecords, tempDir } from '../helpers/cluster.js';

// A real Slurm on this machine: munged, slurmctld and slurmd started by the test (one node, its own
// key, sockets, ports and state directories under a temp dir; SLURM_CONF points every command at
// them), then `srun -n 2 smolcluster worker` and an `sbatch` script run to completion. The workers
// get no MASTER_ADDR/MASTER_PORT/RANK: the master, port, ranks and threads come from Slurm's variables.
const hasSlurm = ['slurmctld', 'slurmd', 'munged', 'srun', 'sbatch'].every((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0);
const isRoot = process.getuid?.() === 0;
const skip = !(hasSlurm && isRoot) && process.env.CI !== 'true' ? 'slurm-wlm and munge (as root) needed' : false;

describe('Slurm: srun -n 2 and sbatch run smolcluster workers (one node, 127.0.0.1)', { skip, timeout: 240_000 }, () => {
  const dir = tempDir('slurm');
  const daemons: ChildProcess[] = [];
  let env: NodeJS.ProcessEnv = {};

  before(async () => {
    for (const d of ['state', 'spool', 'exp']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'munge.key'), randomBytes(1024));
    chmodSync(join(dir, 'munge.key'), 0o600);
    const [ctldPort, dPort] = [await freePort(), await freePort()];
    const node = hostname();
    const conf = join(dir, 'slurm.conf');
    writeFileSync(conf, [
      'ClusterName=smolcluster-test', `SlurmctldHost=${node}(127.0.0.1)`, `SlurmctldPort=${ctldPort}`, `SlurmdPort=${dPort}`,
      'AuthType=auth/munge', `AuthInfo=socket=${join(dir, 'munge.sock')}`, 'CredType=cred/munge', 'SlurmUser=root', 'SlurmdUser=root',
      `StateSaveLocation=${join(dir, 'state')}`, `SlurmdSpoolDir=${join(dir, 'spool')}`,
      `SlurmctldPidFile=${join(dir, 'ctld.pid')}`, `SlurmdPidFile=${join(dir, 'd.pid')}`,
      `SlurmctldLogFile=${join(dir, 'ctld.log')}`, `SlurmdLogFile=${join(dir, 'd.log')}`,
      'ProctrackType=proctrack/pgid', 'TaskPlugin=task/none', 'SelectType=select/cons_tres', 'SelectTypeParameters=CR_Core',
      'ReturnToService=2', 'MpiDefault=none', 'JobCompType=jobcomp/none', 'AccountingStorageType=accounting_storage/none',
      `NodeName=${node} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN`,
      `PartitionName=test Nodes=${node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES`, '',
    ].join('\n'));
    env = { ...process.env, SLURM_CONF: conf, SMOLCLUSTER_TOKEN: TEST_TOKEN };
    for (const k of ['RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'LOCAL_RANK', 'SMOLCLUSTER_THREADS']) delete env[k];
    const start = (cmd: string, args: string[]): void => {
      daemons.push(spawn(cmd, args, { env, stdio: 'ignore' }));
    };
    start('munged', ['--foreground', '--force', `--socket=${join(dir, 'munge.sock')}`, `--key-file=${join(dir, 'munge.key')}`,
      `--pid-file=${join(dir, 'munged.pid')}`, `--log-file=${join(dir, 'munged.log')}`, `--seed-file=${join(dir, 'munge.seed')}`]);
    await sleep(300);
    start('slurmctld', ['-D', '-i', '-f', conf]);
    start('slurmd', ['-D', '-f', conf, '-N', node]);
    // Ready when the node is idle.
    for (let i = 0; ; i++) {
      const s = spawnSync('sinfo', ['-h', '-o', '%t'], { env, encoding: 'utf8' });
      if (s.status === 0 && s.stdout.trim() === 'idle') break;
      if (i > 100) throw new Error(`slurm never became ready: ${s.stdout}${s.stderr}\n${readLog(dir, 'ctld.log')}${readLog(dir, 'd.log')}`);
      await sleep(200);
    }
  });

  after(async () => {
    for (const d of daemons.reverse()) d.kill('SIGTERM');
    await sleep(500);
    for (const d of daemons) if (d.exitCode === null) d.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const workerArgs = (name: string): string[] => [CLI, 'worker', '--max-steps', '6', '--checksum-every', '3', '--timeout', '60', '--experiments-dir', join(dir, 'exp'), '--name', name];

  it('srun -n 2: ranks, world size, master (first node, port from the job id) and threads come from Slurm', () => {
    const r = spawnSync('srun', ['-n', '2', process.execPath, ...workerArgs('srun')], { env, encoding: 'utf8', timeout: 150_000 });
    assert.equal(r.status, 0, `${r.stderr}\n${readLog(dir, 'd.log')}`);
    for (const rank of [0, 1]) {
      assert.match(r.stderr, new RegExp(`rank ${rank} of 2 \\(SLURM_PROCID, SLURM_NTASKS\\), master ${hostname()}:\\d+ \\(SLURM_STEP_NODELIST, SLURM_JOB_ID\\), local rank ${rank}, 1 thread \\(2 cores ÷ 2 local tasks`));
      assert.equal(stepRecords(join(dir, 'exp', 'srun', 'metrics.jsonl'), rank).length, 6);
    }
    assert.match(r.stderr, /waiting for 1 worker/);
  });

  it('sbatch: a batch script whose srun trains to completion', async () => {
    const script = join(dir, 'train.sbatch');
    writeFileSync(script, ['#!/bin/sh', '#SBATCH --ntasks=2', `#SBATCH --output=${join(dir, 'sbatch-%j.out')}`,
      `srun ${[process.execPath, ...workerArgs('sbatch')].join(' ')}`, ''].join('\n'));
    const r = spawnSync('sbatch', [script], { env, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}\n${readLog(dir, 'ctld.log')}`);
    const job = /Submitted batch job (\d+)/.exec(r.stdout)?.[1];
    assert.ok(job, r.stdout);
    // `sbatch --wait` polls at up to 32 s intervals; scontrol answers at once.
    let state = '';
    for (let i = 0; i < 600 && !/JobState=(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL)/.test(state); i++) {
      await sleep(200);
      state = spawnSync('scontrol', ['show', 'job', job], { env, encoding: 'utf8' }).stdout;
    }
    assert.match(state, /JobState=COMPLETED .*ExitCode=0:0/s, state);
    const out = readFileSync(join(dir, `sbatch-${job}.out`), 'utf8');
    assert.match(out, /with 2 workers \(allreduce\): 6 steps/);
    for (const rank of [0, 1]) assert.equal(stepRecords(join(dir, 'exp', 'sbatch', 'metrics.jsonl'), rank).length, 6);
  });
});

function readLog(dir: string, file: string): string {
  try {
    return readFileSync(join(dir, file), 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}
