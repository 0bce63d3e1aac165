import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDashboard } from '../../src/dashboard/server.js';
import { sleep, startCli, tempDir, waitFor } from '../helpers/cluster.js';

let dir = '';
before(() => {
  dir = tempDir('dashboard-server');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const stepLine = (rank: number, step: number): string =>
  `${JSON.stringify({ v: 1, kind: 'step', step, epoch: 0, rank, loss: 1, samples: 4, lr: 0.1, compute_ms: 1, comm_ms: 1, wait_ms: 1, time: 1 })}\n`;

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    }).on('error', reject).end();
  });
}

/** An SSE client: the events received so far. */
function listen(url: string): { events: Array<{ event: string; data: Record<string, unknown> }>; ended: Promise<void> } {
  const events: Array<{ event: string; data: Record<string, unknown> }> = [];
  const ended = new Promise<void>((resolve, reject) => {
    request(url, (res) => {
      let buf = '';
      res.setEncoding('utf8').on('data', (c: string) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) as Record<string, unknown> });
        }
      }).on('end', () => resolve());
    }).on('error', reject).end();
  });
  return { events, ended };
}

describe('dashboard server', { timeout: 30_000 }, () => {
  it('serves the page and uPlot from node_modules, follows a growing folder over SSE, ends the stream on close', async () => {
    const run = join(dir, 'growing');
    const d = await startDashboard({ runs: [{ dir: run, name: 'growing', live: true }], port: 0, pollMs: 50 });
    try {
      const page = await get(d.url);
      assert.equal(page.status, 200);
      assert.match(page.body, /<script src="\/vendor\/uPlot\.iife\.min\.js">/);
      assert.doesNotMatch(page.body, /https?:\/\//, 'the page loads nothing from the network');
      const uplot = await get(`${d.url}vendor/uPlot.iife.min.js`);
      assert.equal(uplot.status, 200);
      assert.match(uplot.type, /javascript/);
      assert.match(uplot.body, /uPlot/);
      assert.equal((await get(`${d.url}app.js`)).status, 200);
      assert.equal((await get(`${d.url}../package.json`)).status, 404);
      assert.equal((await get(`${d.url}api/runs/7/stream`)).status, 404);
      assert.equal((await get(d.url, { Host: 'attacker.example:80' })).status, 403, 'DNS rebinding: other hosts are refused');
      assert.deepEqual(JSON.parse((await get(`${d.url}api/runs`)).body), [{ id: 0, label: 'growing', path: run }]);

      // The folder does not exist yet: the stream starts empty, then grows with the files.
      const sse = listen(`${d.url}api/runs/0/stream`);
      await waitFor(() => sse.events.length >= 1, 'init', 5000);
      assert.equal(sse.events[0].event, 'init');
      mkdirSync(run, { recursive: true });
      writeFileSync(join(run, 'config.json'), JSON.stringify({ model: 'mlp', workers: 1 }));
      writeFileSync(join(run, 'events.jsonl'), `${JSON.stringify({ v: 1, kind: 'worker_joined', rank: 0, host: 'h', backend: 'js', threads: 1, pid: 1, time: 1 })}\n`);
      for (let i = 0; i < 25; i++) appendFileSync(join(run, 'metrics.jsonl'), stepLine(0, i));
      const x = (): number[] => sse.events.filter((e) => e.event === 'update').flatMap((e) => (e.data.buckets as { x: number[] }).x);
      await waitFor(() => x().length >= 2, 'two buckets over SSE', 5000);
      assert.deepEqual(x(), [10, 20]);
      const last = sse.events.at(-1)!.data as { members: Array<{ rank: number; host: string; status: string }> };
      assert.deepEqual(last.members.map((m) => [m.rank, m.host, m.status]), [[0, 'h', 'running']]);
      // A bad line shows as an error naming the file, and the rest goes on.
      appendFileSync(join(run, 'metrics.jsonl'), '{"v":7,"kind":"step"}\n');
      await waitFor(() => sse.events.some((e) => (e.data.errors as string[] | undefined)?.some((m) => /metrics\.jsonl: schema version 7 is newer/.test(m))), 'the error', 5000);

      await d.close();
      await sse.ended;
      assert.equal(sse.events.at(-1)!.event, 'end');
      assert.deepEqual(x(), [10, 20], 'no run_end: the last partial bucket waits for more steps');
    } finally {
      await d.close();
    }
  });

  it('refuses a path that is not a run, naming it; and a port in use', async () => {
    await assert.rejects(startDashboard({ runs: [join(dir, 'nothing')], port: 0 }), /nothing: no such file or folder/);
    const run = join(dir, 'one');
    mkdirSync(run);
    writeFileSync(join(run, 'metrics.jsonl'), stepLine(0, 0));
    const a = await startDashboard({ runs: [run], port: 0 });
    try {
      await assert.rejects(startDashboard({ runs: [run], port: a.port }), new RegExp(`dashboard: port ${a.port} on 127.0.0.1 is in use`));
    } finally {
      await a.close();
    }
  });

  it('train --dashboard in one process serves from a worker thread while the loop computes, and stops at the end', async () => {
    // 20,000 steps: long enough (≈ 3 s on an idle core) that the loop is still computing when the
    // snapshot is polled; 1,500 steps (0.5 s) ended before the first poll on a quiet machine.
    const run = startCli(['train', '--epochs', '12', '--max-steps', '20000', '--name', 'single', '--experiments-dir', dir, '--threads', '1', '--dashboard', '--port', '0'], { timeoutMs: 120_000 });
    try {
      const url = await waitFor(() => /dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(run.stderr)?.[1], 'the URL', 20_000);
      type Snap = { buckets: { x: number[] }; members: Array<{ status: string; backend: string | null }> };
      let snap: Snap | null = null;
      for (const deadline = Date.now() + 20_000; !snap && Date.now() < deadline; await sleep(50)) {
        const s = JSON.parse((await get(`${url}api/runs/0/snapshot`)).body) as Snap;
        if (s.buckets.x.length > 0 && s.members[0]?.backend) snap = s;
      }
      assert.ok(snap, 'no points from the running loop within 20 s');
      assert.equal(snap.members[0].status, 'running');
      const exit = await run.done;
      assert.equal(exit.code, 0, exit.stderr);
      await assert.rejects(get(`${url}api/runs`), /ECONNREFUSED/, 'the dashboard stops with the run');
    } finally {
      run.child.kill('SIGKILL');
    }
  });
});
