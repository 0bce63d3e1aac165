/**
 * Zero-config join across hosts: four network namespaces on one bridge (made here, unique names,
 * removed in `after`), multicast routed out of each veth. Every advertising and browsing process
 * runs inside them, so mDNS never touches this machine's real interfaces.
 *
 *   - `worker --rank 0 --advertise` in host 0; `discover --json` in host 3 lists it (no token in
 *     the output); two `worker --discover` in hosts 1 and 2 (one naming its interface, one on the
 *     multicast route) get ranks 1 and 2 from the store and the run finishes;
 *   - a ps `server --bind-host 0.0.0.0 --advertise` and an elastic `store --advertise`, each joined
 *     by discovering workers that finish their runs;
 *   - two `store --advertise` masters of one cluster name: `worker --discover` refuses, listing
 *     both; a name nobody advertises fails at its deadline, naming the service and the name;
 *   - UDP 5353 held by another program: one error line, no crash.
 *
 * Not root (or no `ip netns`): skipped with the reason; under CI=true that fails instead.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { CLI, TEST_TOKEN, freePort, tempDir } from '../../helpers/cluster.js';
import { BridgedHosts, type Started, startProcess } from '../../helpers/netns.js';

const hosts = new BridgedHosts('scmd', 4, 234);
const ADDR = hosts.addr;
const unavailable = BridgedHosts.unavailable();
if (process.env.CI === 'true' && unavailable !== null) throw new Error(`discovery netns test: network namespaces unavailable under CI=true (${unavailable}); CI must run as root with iproute2 (.ci/run)`);

const inNs = (i: number, args: string[]): string[] => hosts.exec(i, [process.execPath, CLI, ...args]);

/** Waits until the process has written `pattern` to stderr (or ended, or the deadline). */
async function said(p: Started, pattern: RegExp, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let ended = false;
  void p.exit.then(() => (ended = true));
  while (!pattern.test(p.stderr())) {
    if (ended || Date.now() > until) assert.fail(`never said ${pattern}:\n${p.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('zero-config join by DNS-SD across network namespaces', { skip: unavailable ?? false, timeout: 150_000 }, () => {
  let dir = '';
  const started: Started[] = [];
  const start = (i: number, args: string[], timeoutMs: number): Started => {
    const p = startProcess(inNs(i, args), timeoutMs);
    started.push(p);
    return p;
  };

  before(() => {
    dir = tempDir('discover');
    hosts.create();
    hosts.routeMulticast();
  });

  after(() => {
    for (const p of started) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    hosts.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a worker started with --discover finds the advertised master, gets its rank from the store and trains; discover lists the cluster', async () => {
    const port = await freePort();
    const common = ['--max-steps', '4', '--threads', '1', '--timeout', '60', '--experiments-dir', dir, '--name', 'disc', '--comm-backend', 'tcp'];
    const master = start(0, ['worker', '--rank', '0', '--world-size', '3', '--master', `${ADDR[0]}:${port}`, '--advertise', '--cluster-name', 'alpha', ...common], 120_000);
    await said(master, /advertising cluster "alpha" as _smolcluster\._tcp/);

    const listing = await startProcess(inNs(3, ['discover', '--json', '--timeout', '2']), 30_000).exit;
    assert.equal(listing.code, 0, listing.stderr);
    assert.ok(!listing.stdout.includes(TEST_TOKEN), 'the token travels in the advertisement');
    const file = JSON.parse(listing.stdout) as { schema: string; schema_version: number; service: string; clusters: Array<Record<string, unknown>> };
    assert.equal(file.schema, 'smolcluster-discover');
    assert.equal(file.schema_version, 1);
    assert.equal(file.service, '_smolcluster._tcp');
    assert.deepEqual(file.clusters.map((c) => [c.cluster_name, c.host, c.port, c.world_size, c.model, c.strategy, c.protocol_version]),
      [['alpha', ADDR[0], port, 3, 'mlp', 'allreduce', 1]]);

    // Host 1 names its interface by address; host 2 leaves the choice to the multicast route.
    const w1 = start(1, ['worker', '--discover', '--cluster-name', 'alpha', '--iface', ADDR[1], ...common], 120_000);
    const w2 = start(2, ['worker', '--discover', ...common], 120_000);
    const [m, a, b] = await Promise.all([master.exit, w1.exit, w2.exit]);
    for (const [what, e] of [['master', m], ['worker in host 1', a], ['worker in host 2', b]] as const) assert.equal(e.code, 0, `${what}: ${e.stderr.slice(-2000)}`);
    const rankOf = (text: string): number => Number(/rank (\d+) of 3 \(the store, DNS-SD\), master ([\d.]+):(\d+) \(DNS-SD, cluster alpha\)/.exec(text)?.[1] ?? -1);
    assert.deepEqual([rankOf(a.stderr), rankOf(b.stderr)].sort(), [1, 2], `${a.stderr}\n${b.stderr}`);
    assert.match(a.stderr, new RegExp(`found cluster alpha at ${ADDR[0].replace(/\./g, '\\.')}:${port} \\(3 processes, mlp, allreduce, protocol 1\\)`));
    // The two discovered workers dial at once: either may join first.
    assert.match(m.stderr, /rank 1 joined from /);
    assert.match(m.stderr, /rank 2 joined from /);
  });

  it('a ps server listening on every interface (--bind-host 0.0.0.0) is found at the address its answer came from', async () => {
    const port = await freePort();
    const common = ['--strategy', 'ps', '--max-steps', '3', '--threads', '1', '--timeout', '60', '--experiments-dir', dir, '--name', 'discps'];
    // --master names the address rank 0's data links advertise to the mesh; the store listens on every interface.
    const server = start(0, ['server', '--num-workers', '1', '--master', `${ADDR[0]}:${port}`, '--bind-host', '0.0.0.0', '--advertise', '--cluster-name', 'psnet', ...common], 120_000);
    await said(server, /advertising cluster "psnet"/);
    const worker = start(2, ['worker', '--discover', '--cluster-name', 'psnet', ...common], 120_000);
    const [s, w] = await Promise.all([server.exit, worker.exit]);
    assert.equal(s.code, 0, s.stderr.slice(-2000));
    assert.equal(w.code, 0, w.stderr.slice(-2000));
    assert.match(w.stderr, new RegExp(`rank 1 of 2 \\(the store, DNS-SD\\), master ${ADDR[0].replace(/\./g, '\\.')}:${port} \\(DNS-SD, cluster psnet\\)`));
    assert.match(s.stdout, /with 1 worker and a server \(ps\): 3 steps/);
  });

  it('elastic: two `worker --elastic --discover` take ids 0 and 1 from an advertised `smolcluster store`, train, and the store ends with the run', async () => {
    const port = await freePort();
    const training = ['--elastic', '--dataset', 'synthetic-regression', '--batch-size', '16', '--max-steps', '5', '--timeout', '20', '--threads', '1', '--experiments-dir', dir, '--name', 'discel'];
    const store = start(0, ['store', '--world-size', '2', '--master', `${ADDR[0]}:${port}`, '--advertise', '--cluster-name', 'elastic', ...training], 90_000);
    await said(store, /advertising cluster "elastic"/);
    const workers = [1, 2].map((i) => start(i, ['worker', '--discover', '--cluster-name', 'elastic', ...training], 90_000));
    const [w1, w2] = await Promise.all(workers.map((w) => w.exit));
    assert.equal(w1.code, 0, w1.stderr.slice(-2000));
    assert.equal(w2.code, 0, w2.stderr.slice(-2000));
    const idOf = (text: string): number => Number(/rank (\d+) of 2 \(the store, DNS-SD\)/.exec(text)?.[1] ?? -1);
    assert.deepEqual([idOf(w1.stderr), idOf(w2.stderr)].sort(), [0, 1], `${w1.stderr}\n${w2.stderr}`);
    const s = await store.exit;
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stderr, /the run is over and every worker has left/);
  });

  it('two masters of one cluster name: the worker lists both and joins neither; an unknown name fails at its deadline', async () => {
    const [p0, p1] = [await freePort(), await freePort()];
    const store = (i: number, port: number): Started => start(i, ['store', '--world-size', '2', '--master', `${ADDR[i]}:${port}`, '--bind-host', ADDR[i], '--advertise', '--cluster-name', 'beta'], 60_000);
    const stores = [store(0, p0), store(1, p1)];
    for (const s of stores) await said(s, /advertising cluster "beta"/);

    const [twice, none] = await Promise.all([
      startProcess(inNs(3, ['worker', '--discover', '--cluster-name', 'beta', '--discover-timeout', '8', '--threads', '1', '--experiments-dir', dir]), 30_000).exit,
      startProcess(inNs(2, ['worker', '--discover', '--cluster-name', 'gamma', '--discover-timeout', '2', '--threads', '1', '--experiments-dir', dir]), 30_000).exit,
    ]);
    assert.notEqual(twice.code, 0);
    assert.match(twice.stderr, /2 masters advertise the cluster name "beta" \(_smolcluster\._tcp\)/);
    assert.ok(twice.stderr.includes(`beta at ${ADDR[0]}:${p0}`) && twice.stderr.includes(`beta at ${ADDR[1]}:${p1}`), twice.stderr);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /no master of cluster "gamma" answered DNS-SD \(_smolcluster\._tcp\) within 2\.\d s; found instead: beta at/);

    for (const s of stores) s.child.kill('SIGTERM');
    const ends = await Promise.all(stores.map((s) => s.exit));
    for (const e of ends) assert.match(e.stderr, /store: terminated; closing/);
  });

  it('UDP 5353 held by another program (without SO_REUSEADDR): discover says so in one line instead of crashing', async () => {
    const bare = startProcess(hosts.exec(3, [process.execPath, '-e', "require('dgram').createSocket({ type: 'udp4', reuseAddr: false }).bind(5353, () => console.error('bound'))"]), 30_000);
    started.push(bare);
    await said(bare, /bound/);
    const r = await startProcess(inNs(3, ['discover', '--timeout', '2']), 30_000).exit;
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /smolcluster: error: DNS-SD browser: cannot listen on UDP 5353 for multicast DNS \(EADDRINUSE/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    bare.child.kill('SIGKILL');
  });
});
