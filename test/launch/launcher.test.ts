/**
 * `smolcluster launch` against a real OpenSSH server that this test starts on 127.0.0.1 (its own
 * host key, authorized_keys and config in a temp dir; `sshd -D -f`, as root). Two "hosts" — the
 * server and one worker — are both that sshd; each process runs in a tmux session (own socket).
 * Skipped with a message when sshd, tmux or root are missing, except under CI=true, where it fails.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadHostsFile } from '../../src/launch/hosts.js';
import { preflightScript, processArgs, startScript } from '../../src/launch/launcher.js';
import { freePort, runCliProcess, sleep, tempDir, waitFor } from '../helpers/cluster.js';

const ROOT = join(import.meta.dirname, '../../..');
const SSHD = '/usr/sbin/sshd';
const missing = [
  !existsSync(SSHD) && 'sshd (apt-get install openssh-server)',
  !hasCommand('tmux') && 'tmux',
  process.getuid?.() !== 0 && 'root (sshd -D as an unprivileged user cannot log in)',
].filter(Boolean) as string[];
const skip = missing.length > 0 ? `needs ${missing.join(', ')}` : false;
if (skip && process.env.CI === 'true') throw new Error(`launcher test: ${skip} — CI must install them (.ci/run)`);
if (skip) process.stderr.write(`launcher test skipped: ${skip}\n`);

function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const TOKEN = `launch-test-token-${process.pid}-${Date.now()}-abcdef0123456789`;
const ID = `t${process.pid}`;

describe('smolcluster launch (real sshd and tmux on 127.0.0.1)', { skip }, () => {
  let dir = '';
  let sshd: ChildProcess | null = null;
  let sshdLog = '';
  let hostsFile = '';
  let badHostsFile = '';
  let pipelineHostsFile = '';
  const socket = `smolcluster-test-${ID}`;

  before(async () => {
    dir = tempDir('launch');
    const port = await freePort();
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
    writeFileSync(join(dir, 'sshd_config'), [
      `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host_key')}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`, 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password', 'StrictModes no', 'UsePAM no', 'LogLevel ERROR', '',
    ].join('\n'));
    execFileSync('mkdir', ['-p', '/run/sshd']);
    sshd = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    sshd.stderr!.setEncoding('utf8').on('data', (s: string) => (sshdLog += s));
    await waitFor(() => portOpen(port), `sshd on 127.0.0.1:${port}`, 10_000, 100).catch((err: Error) => {
      throw new Error(`${err.message}; sshd said: ${sshdLog}`);
    });
    const masterPort = await freePort();
    const sshOptions = ['-p', String(port), '-i', join(dir, 'client_key'), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR'];
    const hosts = (projectDir: string): string => [
      `project_dir: ${JSON.stringify(projectDir)}`,
      'strategy: ps',
      `master_port: ${masterPort}`,
      `node: ${JSON.stringify(process.execPath)}`,
      `session_prefix: sc-${ID}`,
      `tmux_socket: ${socket}`,
      `log_dir: ${JSON.stringify(join(dir, 'logs'))}`,
      `ssh_options: ${JSON.stringify(sshOptions)}`,
      `args: ${JSON.stringify(['--max-steps', '40', '--threads', '1', '--timeout', '30', '--experiments-dir', join(dir, 'exp'), '--name', 'launched', '--batch-size', '16'])}`,
      'hosts:',
      '  - { name: alpha, ssh: root@127.0.0.1, role: server, address: 127.0.0.1 }',
      '  - { name: beta, ssh: root@127.0.0.1, role: worker, address: 127.0.0.1 }',
      '',
    ].join('\n');
    hostsFile = join(dir, 'hosts.yaml');
    writeFileSync(hostsFile, hosts(ROOT));
    badHostsFile = join(dir, 'bad_hosts.yaml');
    writeFileSync(badHostsFile, hosts(join(dir, 'no-such-project')));
    // Two workers of an allreduce run whose model is cut into 2 pipeline stages (issue 22 §5: launch).
    const pipelineArgs = [
      '--model', 'gpt2-tiny', '--dataset', 'synthetic_text', '--context', '32', '--batch-size', '8', '--max-steps', '4', '--threads', '1',
      '--timeout', '30', '--experiments-dir', join(dir, 'exp'), '--name', 'pipelined', '--pipeline-stages', '2', '--micro-batches', '4',
    ];
    pipelineHostsFile = join(dir, 'pipeline_hosts.yaml');
    writeFileSync(pipelineHostsFile, hosts(ROOT)
      .replace('strategy: ps', 'strategy: allreduce')
      .replace(`master_port: ${masterPort}`, `master_port: ${await freePort()}`)
      .replace(`session_prefix: sc-${ID}`, `session_prefix: sc-${ID}-pp`)
      .replace(/^args: .*$/m, `args: ${JSON.stringify(pipelineArgs)}`)
      .replace('role: server', 'role: worker'));
  });

  after(async () => {
    try {
      execFileSync('tmux', ['-L', socket, 'kill-server'], { stdio: 'ignore' });
    } catch {
      // no server left
    }
    if (sshd && sshd.exitCode === null) {
      sshd.kill('SIGTERM');
      await new Promise((resolve) => sshd!.once('exit', resolve));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the plan: ranks, sessions, commands without the token; the token travels on stdin', () => {
    const plan = loadHostsFile(hostsFile);
    assert.deepEqual(plan.processes.map((p) => [p.host.name, p.rank, p.session]), [['alpha', 0, `sc-${ID}-server`], ['beta', 1, `sc-${ID}-worker1`]]);
    assert.equal(processArgs(plan, plan.processes[0])[0], 'server');
    // Every host is 127.0.0.1: the server listens on loopback only (issue 33 §7).
    assert.match(processArgs(plan, plan.processes[0]).join(' '), /--bind-host 127\.0\.0\.1/);
    assert.deepEqual(processArgs(plan, plan.processes[1]).slice(0, 5), ['worker', '--rank', '1', '--world-size', '2']);
    const script = startScript(plan, plan.processes[1], TOKEN);
    assert.ok(script.includes(TOKEN), 'the start script carries the token (it is sent on stdin)');
    assert.ok(!processArgs(plan, plan.processes[1]).join(' ').includes(TOKEN));
    assert.match(preflightScript(plan, plan.processes[0].host), /node=\$\(/);
  });

  it('preflight names the host and the problem (no project there) and starts nothing', async () => {
    const r = await runCliProcess(['launch', '--hosts', badHostsFile], { env: { SMOLCLUSTER_TOKEN: TOKEN }, timeoutMs: 60_000 });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /preflight failed on alpha \(no built project at .*no-such-project/);
    assert.match(r.stdout, /preflight beta: no built project/);
  });

  it('launch → status → logs → stop: a real ps run of a server and a worker in tmux sessions', async () => {
    const dry = await runCliProcess(['launch', '--hosts', hostsFile, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /dry run: 2 processes, ps/);
    assert.ok(!dry.stdout.includes(TOKEN));

    const started = await runCliProcess(['launch', '--hosts', hostsFile], { env: { SMOLCLUSTER_TOKEN: TOKEN }, timeoutMs: 60_000 });
    assert.equal(started.code, 0, started.stdout + started.stderr + sshdLog);
    assert.match(started.stdout, /preflight alpha: ok \(node v\d+/);
    assert.match(started.stdout, new RegExp(`started sc-${ID}-server on alpha \\(rank 0\\)`));
    assert.match(started.stdout, new RegExp(`started sc-${ID}-worker1 on beta \\(rank 1\\)`));

    // While it runs: the token is in no process's command line, and its file is 0600.
    const tokenFile = join(process.env.HOME ?? '/root', '.smolcluster/run', `sc-${ID}-worker1.token`);
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      assert.ok(!cmdline.includes(TOKEN), `process ${pid} has the token on its command line: ${cmdline.replace(/\0/g, ' ')}`);
    }

    let status = '';
    for (const t0 = Date.now(); Date.now() - t0 < 120_000; await sleep(1000)) {
      status = (await runCliProcess(['launch', 'status', '--hosts', hostsFile])).stdout;
      if (/stopped.*exited with code 0[\s\S]*stopped.*exited with code 0/.test(status)) break;
    }
    if (!/stopped.*exited with code 0[\s\S]*stopped.*exited with code 0/.test(status)) {
      const l = await runCliProcess(['launch', 'logs', 'alpha', '--hosts', hostsFile]);
      assert.fail(`the sessions did not finish: ${status}\n${l.stdout}`);
    }
    assert.match(status, /alpha\s+sc-\S+-server\s+rank 0/);
    const log = await runCliProcess(['launch', 'logs', 'alpha', '--hosts', hostsFile, '-n', '20']);
    assert.equal(log.code, 0, log.stderr);
    assert.match(log.stdout, /mlp 784-128-10 on mnist with 1 worker and a server \(ps\): 40 steps/);
    const none = await runCliProcess(['launch', 'logs', 'gamma', '--hosts', hostsFile]);
    assert.match(none.stderr, /no host "gamma" .* \(hosts: alpha, beta\)/);

    const stopped = await runCliProcess(['launch', 'stop', '--hosts', hostsFile]);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, /beta sc-\S+-worker1: not running/);
    assert.ok(!existsSync(tokenFile), 'stop removes the token files');
    await sleep(10);
  });

  it('launch runs a 2-stage pipeline over two tmux sessions; rank 0 writes the plan and the bubble to result.json', async () => {
    const started = await runCliProcess(['launch', '--hosts', pipelineHostsFile], { env: { SMOLCLUSTER_TOKEN: TOKEN }, timeoutMs: 60_000 });
    assert.equal(started.code, 0, started.stdout + started.stderr + sshdLog);
    let status = '';
    for (const t0 = Date.now(); Date.now() - t0 < 120_000; await sleep(1000)) {
      status = (await runCliProcess(['launch', 'status', '--hosts', pipelineHostsFile])).stdout;
      if (/stopped.*exited with code 0[\s\S]*stopped.*exited with code 0/.test(status)) break;
    }
    if (!/stopped.*exited with code 0[\s\S]*stopped.*exited with code 0/.test(status)) {
      const l = await runCliProcess(['launch', 'logs', 'alpha', '--hosts', pipelineHostsFile]);
      assert.fail(`the sessions did not finish: ${status}\n${l.stdout}`);
    }
    const result = JSON.parse(readFileSync(join(dir, 'exp', 'pipelined', 'result.json'), 'utf8')) as { pipeline?: { placement: { ranges: number[][] }; bubble_fraction: number } };
    assert.equal(result.pipeline?.placement.ranges.length, 2, 'two stages were planned and run');
    assert.ok(result.pipeline.bubble_fraction > 0 && result.pipeline.bubble_fraction < 1, `bubble ${result.pipeline.bubble_fraction}`);
    const stopped = await runCliProcess(['launch', 'stop', '--hosts', pipelineHostsFile]);
    assert.equal(stopped.code, 0, stopped.stderr);
  });
});

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
