/**
 * A parameter-server cluster as three hosts: the server and two workers each in a network
 * namespace of their own (veth pairs on one bridge, created here with unique names and removed in
 * `after` whatever happens). The processes are started by hand, as on real hosts: `server --cluster
 * --nn` and `worker --rank N --master 10.x.y.1:port`. One worker's link is shaped with `tc tbf` so
 * its gradients arrive after the straggler deadline: the run must finish anyway, with that worker's
 * late steps counted. Only addresses inside the namespaces this test creates are used.
 *
 * Where namespaces cannot be made (not root, no `ip netns`), the same run happens on 127.0.0.1
 * with the slow worker made slow by `--fault slow` instead, and the test says so — except under
 * CI=true (.ci/run sets it), where a missing namespace or `tc` fails the test: CI must run it real.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, freePort, stepRecords, tempDir } from '../helpers/cluster.js';
import { BridgedHosts, runToEnd as run, sh, stderrOf } from '../helpers/netns.js';

const hosts = new BridgedHosts('scps', 3, 231);
const NS = hosts.ns;
const ADDR = hosts.addr;

const unavailable = BridgedHosts.unavailable();
const avail = { ok: unavailable === null, why: unavailable ?? '' };
const CI = process.env.CI === 'true';
if (CI && !avail.ok) throw new Error(`netns test: network namespaces unavailable under CI=true (${avail.why}); CI must run as root with iproute2 (.ci/run)`);
const mode = avail.ok ? 'network namespaces' : 'loopback';

describe(`multi-host ps: server and two workers as separate hosts (${mode})`, () => {
  let dir = '';
  let shaped = false;

  before(() => {
    dir = tempDir('netns');
    if (!avail.ok) {
      process.stderr.write(`netns test: network namespaces unavailable (${avail.why}); running on 127.0.0.1 instead\n`);
      return;
    }
    hosts.create();
    // Worker 2's uplink: 16 Mbit/s, so its 400 KB gradient takes ~0.2 s — past the deadline.
    try {
      sh('ip', ['netns', 'exec', NS[2], 'tc', 'qdisc', 'add', 'dev', hosts.nsVeth(2), 'root', 'tbf', 'rate', '16mbit', 'burst', '32kbit', 'latency', '2s']);
      shaped = true;
    } catch (err) {
      if (CI) throw new Error(`netns test: tc tbf failed under CI=true: ${stderrOf(err)}`);
      process.stderr.write('netns test: tc tbf unavailable; slowing worker 2 with --fault slow instead\n');
    }
  });

  after(() => {
    if (avail.ok) hosts.remove();
  });

  it('finishes, with the straggler\'s late steps counted and the fast worker in every step', { timeout: 150_000 }, async () => {
    const port = await freePort();
    const master = avail.ok ? ADDR[0] : '127.0.0.1';
    const cluster = join(dir, 'cluster_config.yaml');
    writeFileSync(cluster, [
      `host_ip: "${avail.ok ? ADDR[0] : '127.0.0.1'}"`, `worker_connect_ip: "${master}"`, `port: ${port}`, 'num_workers: 2', 'timeout: 0.05', '',
    ].join('\n'));
    const nn = join(dir, 'nn_config.yaml');
    writeFileSync(nn, 'batch_size: 32\nlearning_rate: 0.02\nnum_epochs: 1\neval_steps: 0\ntrack_gradients: false\nmodel: {type: SimpleNN, input_dim: 784, hidden: 128, out: 10}\ndataset: {name: MNIST}\n');
    const common = ['--max-steps', '30', '--threads', '1', '--timeout', '60', '--experiments-dir', dir, '--name', 'mh', '--checksum-every', '5'];
    const inNs = (i: number, args: string[]): string[] => (avail.ok ? ['ip', 'netns', 'exec', NS[i], process.execPath, CLI, ...args] : [process.execPath, CLI, ...args]);
    const slow = !avail.ok || !shaped ? ['--fault', 'slow:rank=2:ms=150'] : [];
    const runs = [
      { args: inNs(0, ['server', '--cluster', cluster, '--nn', nn, ...common]) },
      { args: inNs(1, ['worker', '--rank', '1', '--world-size', '3', '--strategy', 'ps', '--master', `${master}:${port}`, '--nn', nn, ...common]) },
      { args: inNs(2, ['worker', '--rank', '2', '--world-size', '3', '--strategy', 'ps', '--master', `${master}:${port}`, '--nn', nn, ...common, ...slow]) },
    ];
    const exits = await Promise.all(runs.map((r) => run(r.args, 140_000)));
    exits.forEach((e, i) => assert.equal(e.code, 0, `process ${i} (${mode}): ${e.stderr.slice(-2000)}`));
    assert.match(exits[0].stdout, /on mnist with 2 workers and a server \(ps\): 30 steps/);

    const server = stepRecords(join(dir, 'mh', 'metrics.jsonl'), 0) as unknown as Array<{ step: number; late_ranks: number[]; contributed_ranks: number[] }>;
    assert.equal(server.length, 30);
    const late = server.filter((s) => s.late_ranks.includes(2)).length;
    assert.ok(late >= 10, `worker 2 was late in only ${late} of 30 steps (${mode})`);
    process.stderr.write(`netns test (${mode}${shaped ? ', worker 2 shaped by tc tbf' : ''}): worker 2 late in ${late} of 30 steps\n`);
    for (const s of server) assert.ok(s.contributed_ranks.includes(1), `step ${s.step}: the fast worker did not contribute`);
    const slowSteps = stepRecords(join(dir, 'mh', 'metrics.jsonl'), 2) as unknown as Array<{ late: boolean }>;
    assert.ok(slowSteps.length < 30 && slowSteps.some((s) => s.late), 'the straggler skips versions and is told it was late');
  });
});
