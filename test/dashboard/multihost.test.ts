/**
 * A dashboard for a cluster of two hosts: rank 0 and rank 1 each in a network namespace of its own
 * (on one bridge: test/helpers/netns.ts, unique names, removed in `after`), each writing its own
 * experiments folder — so rank 1's files are not the ones rank 0's dashboard reads. Rank 0 runs
 * `worker --dashboard`; while the run is going, a client inside rank 0's namespace must see rank 1's
 * steps and host on the page's API, brought by the metric stream over the cluster's own connection.
 * Only addresses inside the namespaces made here are used; without namespaces (not root) the same
 * run happens on 127.0.0.1 and the test says so, except under CI=true, where that fails.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, freePort, stepRecords, tempDir } from '../helpers/cluster.js';
import { BridgedHosts, runToEnd as run } from '../helpers/netns.js';

const hosts = new BridgedHosts('scdh', 2, 232);

/** Polls the dashboard's snapshot until rank 1 has reported `steps` steps; prints its member row. */
const POLLER = `
const [url, want] = process.argv.slice(2);
const end = Date.now() + 60000;
for (;;) {
  try {
    const s = await (await fetch(url)).json();
    const m = s.members.find((x) => x.rank === 1);
    if (m && m.steps >= Number(want) && m.host) { console.log(JSON.stringify({ member: m, ended: s.ended })); process.exit(0); }
  } catch {}
  if (Date.now() > end) { console.error('rank 1 never appeared on the dashboard'); process.exit(1); }
  await new Promise((r) => setTimeout(r, 150));
}
`;

const CI = process.env.CI === 'true';

describe('dashboard of a two-host cluster (worker --dashboard on rank 0)', () => {
  let why: string | null = null;
  let dir = '';

  before(() => {
    dir = tempDir('dashhosts');
    why = BridgedHosts.unavailable();
    if (!why) hosts.create();
    if (why && CI) throw new Error(`multi-host dashboard test: network namespaces unavailable under CI=true (${why})`);
    if (why) process.stderr.write(`multi-host dashboard test: network namespaces unavailable (${why}); running on 127.0.0.1 instead\n`);
  });

  after(() => {
    if (!why) hosts.remove();
  });

  it('shows rank 1 (its own folder, another host) live, with every step and no drops', { timeout: 120_000 }, async () => {
    const netns = why === null;
    const host = (i: number): string => (netns ? hosts.addr[i] : '127.0.0.1');
    // Inside fresh namespaces every port is free; on loopback ask the system for two.
    const port = netns ? 29_500 : await freePort();
    const dashPort = netns ? 3000 : await freePort();
    const poller = join(dir, 'poll.mjs');
    writeFileSync(poller, POLLER);
    const inNs = (i: number, argv: string[]): string[] => (netns ? hosts.exec(i, argv) : argv);
    const steps = 80;
    const common = ['--world-size', '2', '--master', `${host(0)}:${port}`, '--max-steps', String(steps), '--threads', '1', '--timeout', '30', '--name', 'mh', '--batch-size', '32'];
    const rank0 = run(inNs(0, [process.execPath, CLI, 'worker', '--rank', '0', ...common, '--experiments-dir', join(dir, 'host0'), '--dashboard', '--dashboard-port', String(dashPort)]), 100_000);
    // Rank 1 computes slowly, so the run lasts long enough to be watched.
    const rank1 = run(inNs(1, [process.execPath, CLI, 'worker', '--rank', '1', ...common, '--experiments-dir', join(dir, 'host1'), '--fault', 'slow:rank=1:ms=40']), 100_000);
    const watch = run(inNs(0, [process.execPath, poller, `http://127.0.0.1:${dashPort}/api/runs/0/snapshot`, '20']), 90_000);
    const [e0, e1, w] = await Promise.all([rank0, rank1, watch]);
    assert.equal(e0.code, 0, `rank 0: ${e0.stderr.slice(-2000)}`);
    assert.equal(e1.code, 0, `rank 1: ${e1.stderr.slice(-2000)}`);
    assert.equal(w.code, 0, `dashboard client: ${w.stderr}`);
    const seen = JSON.parse(w.stdout) as { member: { steps: number; host: string; node: string | null; device: string | null }; ended: boolean };
    assert.equal(seen.ended, false, 'rank 1 was seen while the run was still going');
    assert.ok(seen.member.node, 'rank 1\'s node summary (from its worker_joined) is on the page');
    assert.match(seen.member.device ?? '', /^cpu · (native|js)$/, 'rank 1\'s device (from its worker_joined) is on the page');

    // Rank 0's folder holds both ranks' steps; rank 1's own folder only its own.
    const folder0 = join(dir, 'host0', 'mh');
    assert.equal(stepRecords(join(folder0, 'metrics.jsonl'), 1).length, steps);
    assert.equal(stepRecords(join(folder0, 'metrics.jsonl'), 0).length, steps);
    assert.equal(stepRecords(join(dir, 'host1', 'mh', 'metrics.jsonl'), 0).length, 0);
    const events = readFileSync(join(folder0, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const account = events.find((e) => e.kind === 'metric_stream');
    const rank1Events = events.filter((e) => e.rank === 1 && e.kind !== 'metric_stream');
    assert.deepEqual(rank1Events.filter((e) => String(e.kind).startsWith('worker_')).map((e) => e.kind), ['worker_joined', 'worker_finished']);
    assert.deepEqual({ ...account, time: 0 }, { schema: 'smolcluster-events', schema_version: 1, kind: 'metric_stream', rank: 1, records: steps + rank1Events.length, dropped: 0, refused: 0, state: 'ended', time: 0 });
    assert.deepEqual(events.slice(-1).map((e) => e.kind), ['run_end'], 'rank 1\'s lines came in before the run ended');
    process.stderr.write(`multi-host dashboard test (${netns ? 'network namespaces' : 'loopback'}): rank 1 seen live at step ${seen.member.steps} from host ${seen.member.host}\n`);
  });
});
