/**
 * The coordinator's dashboard (`coordinator --dashboard`) in a real browser, over real processes on
 * 127.0.0.1: two compute nodes register and show as idle on the cpu, turn busy while a job runs, the job's
 * rounds appear with the validation error the client got, and a SIGKILLed node shows as dead.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { startCli, tempDir, waitFor, type Running } from '../helpers/cluster.js';
import { ENV, JOB, startNode, stopAll, type NodeProcess } from '../helpers/cluster_jobs.js';
import { type Browser, browserMissing, launchBrowser } from './browser.js';

const dir = tempDir('cluster-dashboard-e2e');
const processes: Running[] = [];
let browser: Browser | null = null;
after(async () => {
  await browser?.close();
  await stopAll(processes);
  rmSync(dir, { recursive: true, force: true });
});

const nodeStates = (page: Page): Promise<Record<string, string>> =>
  page.$$eval('table.nodes tbody tr', (trs) => Object.fromEntries(trs.map((tr) => [(tr as HTMLElement).dataset.node, (tr as HTMLElement).dataset.state])));

describe('cluster dashboard in a real browser', { timeout: 60_000 }, () => {
  it('nodes idle → busy → dead, and every round with its validation error', async (t) => {
    const missing = browserMissing();
    if (missing) return t.skip(missing);
    const out = join(dir, 'coordinator');
    const coordinator = startCli([
      'coordinator', '--host', '127.0.0.1', '--port', '0', '--policy', 'round-robin', '--out', out, '--dead-after-ms', '1000', '--dashboard', '--dashboard-port', '0',
    ], { env: ENV, timeoutMs: 60_000 });
    processes.push(coordinator);
    let page: Page | null = null;
    try {
      const port = Number(await waitFor(() => /coordinator on 127\.0\.0\.1:(\d+)/.exec(coordinator.stderr)?.[1], 'the coordinator port on stderr', 20_000));
      const url = await waitFor(() => /dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(coordinator.stderr)?.[1], 'the dashboard URL on stderr', 20_000);
      // Every task waits 150 ms on its node (load 1; round-robin delays rather than rejects a task):
      // the nodes are busy long enough to be seen so.
      const [a, b]: NodeProcess[] = await Promise.all([0, 1].map(() => startNode({ coordinator: port, load: 1, delayMs: 150 })));
      processes.push(a, b);
      const ids = [a, b].map((n) => `127.0.0.1:${n.port}`).sort();
      browser = await launchBrowser();
      page = await browser.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(url);

      // Both nodes listed, idle, before any job; a training run's summary and charts are not shown.
      await page.waitForFunction((n) => document.querySelectorAll('table.nodes tbody tr[data-state="idle"]').length === n, 2, { timeout: 20_000 });
      assert.deepEqual(Object.keys(await nodeStates(page)), ids);
      // Each node's device, from its heartbeats (these train on the cpu).
      await page.waitForFunction(() => [...document.querySelectorAll('table.nodes tbody td.device')].every((td) => td.textContent === 'cpu'), null, { timeout: 10_000 });
      for (const sel of ['.summary', '.charts', '.workers-wrap']) assert.equal(await page.isVisible(`section.run ${sel}`), false, `${sel} shown`);
      assert.equal(await page.isVisible('section.run table.rounds'), true);

      const rounds = 3;
      const result = join(dir, 'result.json');
      const client = startCli([
        'submit', '--coordinator', `127.0.0.1:${port}`, '--rounds', String(rounds), '--epochs', String(JOB.epochs), '--hidden', String(JOB.hidden),
        '--lr', String(JOB.lr), '--seed', String(JOB.seed), '--output', result,
      ], { env: ENV, timeoutMs: 40_000 });
      processes.push(client);
      await page.waitForSelector('table.nodes tbody tr[data-state="busy"]', { timeout: 20_000 });
      const exit = await client.done;
      assert.equal(exit.code, 0, client.stderr);

      // One row per round, newest first, with the validation error the client was given.
      await page.waitForFunction((n) => document.querySelectorAll('table.rounds tbody tr').length === n, rounds, { timeout: 10_000 });
      const shown = await page.$$eval('table.rounds tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
      const history = (JSON.parse(readFileSync(result, 'utf8')) as { history: Array<{ validation_error: number; train_error: number }> }).history;
      assert.equal(history.length, rounds);
      assert.deepEqual(shown.map((r) => [r[1], r[2], r[3]]), history.map((h, i) => [String(i + 1), h.validation_error.toFixed(4), h.train_error.toFixed(4)]).reverse());
      // Both nodes idle again, and all 11 × rounds tasks counted between them.
      await page.waitForFunction(() => document.querySelectorAll('table.nodes tbody tr[data-state="idle"]').length === 2, null, { timeout: 10_000 });
      const done = await page.$$eval('table.nodes tbody tr td:nth-child(4)', (tds) => tds.map((td) => Number(td.textContent)));
      assert.equal(done.reduce((s, x) => s + x, 0), 11 * rounds);
      // The rounds as a chart, each node's busy spans on its timeline, and where every task ran.
      assert.equal(await page.$eval('[data-chart="rounds"]', (f) => (f as HTMLElement).dataset.points), String(rounds));
      assert.equal(await page.$$eval('[data-chart="rounds"] canvas', (c) => c.length) > 0, true, 'the rounds chart is drawn');
      for (const id of ids) assert.ok(await page.$(`.timeline[data-node="${id}"] .track span[data-state="busy"]`), `${id} has busy spans on its timeline`);
      const ran = await page.$$eval('table.tasks tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-node')));
      assert.equal(ran.length, 11 * rounds);
      assert.deepEqual([...new Set(ran)].sort(), ids, 'round-robin ran tasks on both nodes');

      // A node SIGKILLed: dead on the page, with why; the other stays idle.
      a.child.kill('SIGKILL');
      const dead = `127.0.0.1:${a.port}`;
      await page.waitForSelector(`table.nodes tbody tr[data-node="${dead}"][data-state="dead"]`, { timeout: 10_000 });
      assert.deepEqual(await nodeStates(page), { [dead]: 'dead', [`127.0.0.1:${b.port}`]: 'idle' });
      assert.notEqual(await page.$eval(`tr[data-node="${dead}"] td:nth-child(5)`, (td) => td.textContent), '');
      assert.deepEqual(errors, [], 'errors on the page');
      await page.screenshot({ path: join(tmpdir(), 'smolcluster-dashboard-e2e-cluster.png'), fullPage: true });
    } catch (e) {
      const text = page ? await page.$eval('section.run', (r) => r.textContent?.replace(/\s+/g, ' ').slice(0, 1500)).catch(() => '') : '';
      throw new Error(`${(e as Error).message}\n--- coordinator stderr:\n${coordinator.stderr.slice(-3000)}\n--- page: ${text}`, { cause: e });
    }
  });
});
