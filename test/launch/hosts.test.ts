/**
 * hosts.yaml and SmolCluster's cluster_config.yaml: the launcher takes num_workers and the port from
 * the cluster file hosts.yaml names, unless hosts.yaml itself says (master_port, num_workers).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadHostsFile } from '../../src/launch/hosts.js';
import { processArgs } from '../../src/launch/launcher.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/cluster.js';

const HOSTS = [
  'hosts:',
  '  - { name: a, ssh: me@a, role: server, address: 10.0.0.1 }',
  '  - { name: b, ssh: me@b, role: worker }',
  '  - { name: c, ssh: me@c, role: worker }',
].join('\n');

function files(hostsLines: string[]): string {
  const dir = tempDir('hosts');
  mkdirSync(join(dir, 'conf'));
  writeFileSync(join(dir, 'conf', 'cluster_config.yaml'), 'host_ip: 0.0.0.0\nport: 65432\nnum_workers: 1\n');
  const file = join(dir, 'hosts.yaml');
  writeFileSync(file, `project_dir: ~/smolcluster\n${hostsLines.join('\n')}\n${HOSTS}\n`);
  return file;
}

describe('launch plan: hosts.yaml over cluster_config.yaml', () => {
  it('num_workers and port come from the cluster config when hosts.yaml does not give them', () => {
    const plan = loadHostsFile(files(['cluster: conf/cluster_config.yaml']));
    assert.equal(plan.masterPort, 65432);
    assert.deepEqual(plan.processes.map((p) => [p.host.name, p.rank, p.role]), [['a', 0, 'server'], ['b', 1, 'worker']]);
    assert.match(plan.sources.masterPort, /cluster_config\.yaml port$/);
    assert.match(plan.sources.workers, /cluster_config\.yaml num_workers$/);
  });

  it('hosts.yaml overrides both; without a cluster file every worker host and port 29500', () => {
    const plan = loadHostsFile(files(['cluster: conf/cluster_config.yaml', 'master_port: 30000', 'num_workers: 2']));
    assert.deepEqual([plan.masterPort, plan.worldSize], [30000, 3]);
    const plain = loadHostsFile(files([]));
    assert.deepEqual([plain.masterPort, plain.worldSize, plain.sources.masterPort], [29500, 3, 'default']);
  });

  it('more workers than worker hosts, or a cluster file that is not there: an error naming the key', () => {
    assert.throws(() => loadHostsFile(files(['num_workers: 3'])), /hosts\.yaml \(hosts\).*num_workers is 3 .* only 2 host\(s\) have role: worker/);
    assert.throws(() => loadHostsFile(files(['cluster: nowhere.yaml'])), /hosts\.yaml \(cluster\).*nowhere\.yaml is not found/);
  });

  it('--elastic all-reduce: the rendezvous store gets a session of its own on the first host, started before the workers', () => {
    const file = join(tempDir('hosts'), 'hosts.yaml');
    writeFileSync(file, ['project_dir: ~/smolcluster', 'strategy: allreduce', 'args: ["--elastic"]', 'hosts:',
      '  - { name: a, ssh: me@a, address: 10.0.0.1 }', '  - { name: b, ssh: me@b }', ''].join('\n'));
    const plan = loadHostsFile(file);
    assert.deepEqual(plan.processes.map((p) => [p.host.name, p.rank, p.role, p.session]),
      [['a', -1, 'store', 'smolcluster-store'], ['a', 0, 'worker', 'smolcluster-worker0'], ['b', 1, 'worker', 'smolcluster-worker1']]);
    assert.deepEqual(processArgs(plan, plan.processes[0]).slice(0, 7), ['store', '--world-size', '2', '--master', '10.0.0.1:29500', '--bind-host', '0.0.0.0']);
  });

  it('a host\'s device is its worker\'s --device, after args (one host a GPU worker, another a cpu worker)', () => {
    const dir = tempDir('hosts-device');
    const file = join(dir, 'hosts.yaml');
    writeFileSync(file, ['project_dir: /p', 'strategy: allreduce', 'args: ["--device", "cpu"]', 'hosts:',
      '  - { name: a, ssh: me@a, device: gpu }', '  - { name: b, ssh: me@b }'].join('\n'));
    const plan = loadHostsFile(file);
    const [gpu, cpu] = plan.processes.map((p) => processArgs(plan, p));
    assert.deepEqual(gpu.slice(-4), ['--device', 'cpu', '--device', 'gpu']);
    assert.deepEqual(cpu.slice(-2), ['--device', 'cpu']);
    writeFileSync(file, ['project_dir: /p', 'hosts:', '  - { name: a, ssh: me@a, role: server }', '  - { name: b, ssh: me@b, device: tpu }'].join('\n'));
    assert.throws(() => loadHostsFile(file), /hosts\.1\.device/);
  });

  it('launch --dry-run says where the port and the worker count came from', async () => {
    const r = await runCli(['launch', '--hosts', files(['cluster: conf/cluster_config.yaml']), '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /dry run: 2 processes, ps, master 10\.0\.0\.1:65432\n {2}port from .*cluster_config\.yaml port; 1 workers from .*cluster_config\.yaml num_workers/);
  });
});
