import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { findWorker, runCliProcess, startCli, tempDir, waitFor, workersByRank } from '../helpers/cluster.js';
import { type Browser, browserMissing, launchBrowser } from './browser.js';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import { type LlamaSpec, createModel } from '../../src/nn/models/index.js';

/** Screenshots stay here after the test (the run folders do not). */
const SHOTS = join(tmpdir(), 'smolcluster-dashboard-e2e');

let dir = '';
let browser: Browser | null = null;
before(() => {
  dir = tempDir('dashboard-e2e');
  mkdirSync(SHOTS, { recursive: true });
});
after(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

const points = (page: Page, chart: string): Promise<number> =>
  page.$eval(`section.run [data-chart="${chart}"]`, (f) => Number((f as HTMLElement).dataset.points ?? 0));

describe('dashboard in a real browser', { timeout: 120_000 }, () => {
  it('a live 2-worker run: curves grow, every rank is listed, a SIGKILLed worker shows as lost', async (t) => {
    const missing = browserMissing();
    if (missing) return t.skip(missing);
    const name = 'live';
    const launcher = startCli([
      'train', '--workers', '2', '--max-steps', '100000', '--eval-every', '30', '--batch-size', '16', '--threads', '1', '--timeout', '5',
      '--name', name, '--experiments-dir', dir, '--dashboard', '--port', '0', '--trace',
    ], { timeoutMs: 100_000 });
    try {
      const url = await waitFor(() => /dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(launcher.stderr)?.[1], 'the dashboard URL on stderr', 30_000);
      browser = await launchBrowser();
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(url);

      // Every rank is listed, running, with its host, what its node brings, its backend and the device it trains on.
      await page.waitForFunction(() => document.querySelectorAll('table.workers tbody tr[data-status="running"]').length === 2, null, { timeout: 40_000 });
      const rows = await page.$$eval('table.workers tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
      assert.deepEqual(rows.map((r) => r[0]), ['0', '1']);
      for (const r of rows) {
        assert.notEqual(r[1], '–', `host of rank ${r[0]}`);
        assert.match(r[2], /^\d+ cores · [\d.]+ GiB · /, `node of rank ${r[0]}`);
        assert.notEqual(r[3], '–', `backend of rank ${r[0]}`);
        assert.match(r[4], /^cpu · (native|js)$/, `device of rank ${r[0]}`);
      }
      // The curves receive points, live: loss, throughput, step time by worker, then accuracy.
      await page.waitForFunction(() => {
        const n = (c: string): number => Number(document.querySelector<HTMLElement>(`[data-chart="${c}"]`)?.dataset.points ?? 0);
        return n('loss') >= 3 && n('throughput') >= 3 && n('steptime') >= 3 && n('accuracy') >= 1;
      }, null, { timeout: 40_000 });
      const before = await points(page, 'throughput');
      await page.waitForFunction((b) => Number(document.querySelector<HTMLElement>('[data-chart="throughput"]')?.dataset.points ?? 0) > b, before, { timeout: 20_000 });
      // The split of a step per worker is drawn for both ranks, and a straggler (or balance) is named.
      assert.equal(await page.$$eval('table.workers .split', (s) => s.length), 2);
      assert.ok(await page.$eval('.straggler', (s) => !(s as HTMLElement).hidden && /rank \d/.test(s.textContent ?? '')));
      await page.screenshot({ path: join(SHOTS, 'live.png'), fullPage: true });

      const victim = await findWorker(launcher.pid, 1, 2);
      process.kill(victim, 'SIGKILL');
      await page.waitForSelector('table.workers tr[data-rank="1"][data-status="lost"]', { timeout: 30_000 });
      const exit = await launcher.done;
      assert.notEqual(exit.code, 0);
      // After the launcher's end the page keeps the last state and says the run failed.
      await page.waitForSelector('section.run[data-state="failed"]', { timeout: 10_000 });
      assert.match(await page.$eval('tr[data-rank="1"] .status', (s) => s.textContent ?? ''), /lost.*killed by SIGKILL/);
      const log = await page.$$eval('ol.events li', (lis) => lis.map((li) => li.textContent ?? ''));
      assert.ok(log.some((l) => /rank 1 joined/.test(l)), log.join('\n'));
      assert.ok(log.some((l) => /rank 1 lost: killed by SIGKILL/.test(l)), log.join('\n'));
      await page.screenshot({ path: join(SHOTS, 'killed.png'), fullPage: true });
      assert.deepEqual(errors, [], 'errors on the page');

      // The files behind it: events of the launcher and the ranks, and both ranks' timeline.
      const events = readFileSync(join(dir, name, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const kinds = events.map((e) => `${e.kind}${e.rank !== undefined ? ` ${e.rank}` : ''}`);
      for (const k of ['run_start', 'worker_started 0', 'worker_started 1', 'worker_joined 0', 'worker_joined 1', 'eval 0', 'worker_lost 1', 'run_end']) {
        assert.ok(kinds.includes(k), `${k} missing from events.jsonl: ${kinds.join(', ')}`);
      }
      const trace = JSON.parse(readFileSync(join(dir, name, 'trace.json'), 'utf8')) as { traceEvents: Array<{ ph: string; pid: number }> };
      assert.deepEqual([...new Set(trace.traceEvents.filter((e) => e.ph === 'X').map((e) => e.pid))].sort(), [0, 1]);
      process.stdout.write(`# screenshots: ${join(SHOTS, 'live.png')}, ${join(SHOTS, 'killed.png')}\n`);
    } catch (e) {
      // What the launcher said and what the page shows, to tell a slow machine from a bug.
      const page = browser?.context.pages()[0];
      const shown = page ? await page.$eval('section.run', (r) => r.textContent?.replace(/\s+/g, ' ').slice(0, 1500)).catch(() => '') : '';
      if (page) await page.screenshot({ path: join(SHOTS, 'failed.png'), fullPage: true }).catch(() => undefined);
      throw new Error(`${(e as Error).message}\n--- launcher stderr:\n${launcher.stderr.slice(-3000)}\n--- page: ${shown}`, { cause: e });
    } finally {
      if (launcher.child.exitCode === null) launcher.child.kill('SIGKILL');
      for (const pid of (() => { try { return [...workersByRank(launcher.pid).values()]; } catch { return []; } })()) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
  });

  it('`smolcluster dashboard A B` puts two finished runs side by side', async (t) => {
    const missing = browserMissing();
    if (missing) return t.skip(missing);
    const finished = await runCliProcess(
      ['train', '--max-steps', '60', '--eval-every', '20', '--clip-grad-norm', '5', '--name', 'done', '--experiments-dir', dir, '--threads', '1'],
      { timeoutMs: 60_000 },
    );
    assert.equal(finished.code, 0, finished.stderr);
    const other = join(dir, 'live');
    const serve = startCli(['dashboard', join(dir, 'done'), join(other, 'events.jsonl'), '--port', '0'], { timeoutMs: 60_000 });
    try {
      const url = await waitFor(() => /dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(serve.stderr)?.[1], 'the dashboard URL', 20_000);
      browser ??= await launchBrowser();
      const page = await browser.context.newPage();
      await page.goto(url);
      await page.waitForFunction(() => document.querySelectorAll('section.run[data-state]').length === 2, null, { timeout: 20_000 });
      const heads = await page.$$eval('section.run', (runs) => runs.map((r) => [r.querySelector('.name')?.textContent, (r as HTMLElement).dataset.state]));
      assert.deepEqual(heads.map((h) => h[0]), ['done', 'live']);
      assert.equal(heads[0][1], 'finished');
      const perRun = await page.$$eval('section.run [data-chart="loss"]', (fs) => fs.map((f) => Number((f as HTMLElement).dataset.points)));
      assert.ok(perRun.every((n) => n > 0), `loss points per run: ${perRun}`);
      // Gradient norms were tracked (--clip-grad-norm) in the first run only.
      const grad = await page.$$eval('section.run [data-chart="gradnorm"]', (fs) => fs.map((f) => !(f as HTMLElement).hidden));
      assert.deepEqual(grad, [true, false]);
      // Accuracy is a percentage (0–100) and every x-axis spans the run's 60 steps, not more.
      const ranges = await page.$eval('section.run [data-chart="accuracy"]', (f) => [(f as HTMLElement).dataset.xRange, (f as HTMLElement).dataset.yRange]);
      assert.deepEqual(ranges, ['0,60', '0,100']);
      assert.equal(await page.$eval('section.run [data-chart="loss"]', (f) => (f as HTMLElement).dataset.xRange), '0,60');
      await page.screenshot({ path: join(SHOTS, 'side-by-side.png'), fullPage: true });
    } finally {
      serve.child.kill('SIGTERM');
      await serve.done;
    }
  });

  it('a language model\'s run shows tokens/s, learning rate, perplexity and MFU curves, and tokens/s in its header', async (t) => {
    const missing = browserMissing();
    if (missing) return t.skip(missing);
    const lm = await runCliProcess(
      ['train', '--model', 'gpt2-tiny', '--dataset', 'synthetic_text', '--context', '16', '--max-steps', '30', '--eval-every', '10', '--warmup-steps', '10', '--name', 'lm', '--experiments-dir', dir, '--threads', '1'],
      { timeoutMs: 60_000 },
    );
    assert.equal(lm.code, 0, lm.stderr);
    const result = JSON.parse(readFileSync(join(dir, 'lm', 'result.json'), 'utf8')) as { tokens_per_sec: number; mfu?: { value: number } };
    const serve = startCli(['dashboard', join(dir, 'lm'), '--port', '0'], { timeoutMs: 60_000 });
    try {
      const url = await waitFor(() => /dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(serve.stderr)?.[1], 'the dashboard URL', 20_000);
      browser ??= await launchBrowser();
      const page = await browser.context.newPage();
      await page.goto(url);
      await page.waitForFunction(() => document.querySelector('section.run')?.getAttribute('data-state') === 'finished', null, { timeout: 20_000 });
      assert.equal(await page.$eval('section.run [data-chart="throughput"] small', (e) => e.textContent), '(tokens/s, cluster)');
      for (const chart of ['throughput', 'lr', 'perplexity']) assert.ok(await points(page, chart) > 0, `${chart} has points`);
      const summary = await page.$$eval('section.run .summary div', (ds) => Object.fromEntries(ds.map((d) => [d.querySelector('dt')!.textContent, d.querySelector('dd')!.textContent])));
      assert.equal(summary['tokens/s'], Math.round(result.tokens_per_sec).toLocaleString('en-US'));
      assert.notEqual(summary['test perplexity'], '–');
      // MFU needs the GEMM peak result.json holds (a cpu run of a model whose FLOPs are known).
      assert.ok(result.mfu, 'the run measured MFU');
      assert.ok(await points(page, 'mfu') > 0, 'the MFU chart is drawn once the run has its peak');
      assert.equal(await page.$eval('section.run [data-chart="mfu"]', (f) => (f as HTMLElement).hidden), false);
      await page.screenshot({ path: join(SHOTS, 'language-model.png'), fullPage: true });
    } finally {
      serve.child.kill('SIGTERM');
      await serve.done;
    }
  });

  it('a GRPO run shows its reward (with the held-out points), KL, clip fraction, completion length, tokens/s and staleness charts', async (t) => {
    const missing = browserMissing();
    if (missing) return t.skip(missing);
    const spec: LlamaSpec = {
      type: 'llama', modelType: 'llama', vocabSize: 260, context: 96, layers: 2, width: 32, intermediate: 48, heads: 4, kvHeads: 2, headDim: 8,
      ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
    };
    saveFolder(join(dir, 'policy'), createModel(spec, 3), spec);
    const grpo = await runCliProcess(['grpo', '--model', join(dir, 'policy'), '--tokenizer', 'bytes', '--task', 'addition:1', '--task-size', '20', '--held-out', '5',
      '--reward', 'exact-number', '--reward', 'format:\\d', '--num-generations', '4', '--batch-size', '8', '--max-completion-length', '4', '--max-steps', '6', '--eval-every', '3',
      '--beta', '0.04', '--lr', '0.01', '--threads', '1', '--name', 'grpo', '--experiments-dir', dir], { timeoutMs: 60_000 });
    assert.equal(grpo.code, 0, grpo.stderr);
    const serve = startCli(['dashboard', join(dir, 'grpo'), '--port', '0'], { timeoutMs: 60_000 });
    try {
      const url = await waitFor(() => /dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(serve.stderr)?.[1], 'the dashboard URL', 20_000);
      browser ??= await launchBrowser();
      const page = await browser.context.newPage();
      await page.goto(url);
      await page.waitForFunction(() => Number(document.querySelector('section.run [data-chart="grpo-reward"]')?.getAttribute('data-points') ?? 0) > 0, null, { timeout: 20_000 });
      // 6 steps and 3 held-out evaluations (before, after 3, after 6) on the reward chart; every other GRPO chart drawn.
      assert.equal(await points(page, 'grpo-reward'), 9);
      for (const chart of ['grpo-kl', 'grpo-clip', 'grpo-length', 'grpo-tps', 'grpo-staleness']) assert.equal(await points(page, chart), 6, chart);
      assert.equal(await page.$eval('section.run [data-chart="loss"]', (f) => (f.closest('.charts') as HTMLElement).hidden), true, 'the training loop\'s charts are hidden');
      const summary = await page.$$eval('section.run .summary div', (ds) => Object.fromEntries(ds.map((d) => [d.querySelector('dt')!.textContent, d.querySelector('dd')!.textContent])));
      assert.deepEqual([summary.steps, summary.prompts], ['6', '--task addition:1']);
      await page.screenshot({ path: join(SHOTS, 'grpo.png'), fullPage: true });
    } finally {
      serve.child.kill('SIGTERM');
      await serve.done;
    }
  });

  it('a mixed cluster\'s worker table names each worker\'s device: a GPU adapter beside a cpu', async (t) => {
    const missing = browserMissing();
    if (missing) return t.skip(missing);
    // The lines a GPU rank and a cpu rank write at join (test/tensor/device_summary.test.ts checks a real webgpu rank's).
    const run = join(dir, 'mixed');
    mkdirSync(run, { recursive: true });
    const joined = (rank: number, device: object): object => ({ schema: 'smolcluster-events', schema_version: 1, kind: 'worker_joined', rank, host: `h${rank}`, backend: 'b', threads: 1, precision: 'fp32', pid: 10 + rank, device, time: 2 });
    writeFileSync(join(run, 'events.jsonl'), [
      { schema: 'smolcluster-events', schema_version: 1, kind: 'run_start', name: 'mixed', workers: 2, pid: 1, host: 'h0', time: 1 },
      joined(0, { type: 'webgpu', name: 'nvidia ampere NVIDIA A100', backend: 'webgpu', software: false }),
      joined(1, { type: 'cpu', name: 'cpu', backend: 'native', software: false }),
    ].map((e) => JSON.stringify(e)).join('\n') + '\n');
    const serve = startCli(['dashboard', join(run, 'events.jsonl'), '--port', '0'], { timeoutMs: 60_000 });
    try {
      const url = await waitFor(() => /dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(serve.stderr)?.[1], 'the dashboard URL', 20_000);
      browser ??= await launchBrowser();
      const page = await browser.context.newPage();
      await page.goto(url);
      await page.waitForFunction(() => document.querySelectorAll('table.workers tbody tr td.device').length === 2, null, { timeout: 20_000 });
      const devices = await page.$$eval('table.workers tbody tr', (trs) => trs.map((tr) => [tr.getAttribute('data-rank'), tr.querySelector('td.device')?.textContent]));
      assert.deepEqual(devices, [['0', 'nvidia ampere NVIDIA A100 · webgpu'], ['1', 'cpu · native']]);
      const header = await page.$$eval('table.workers thead th', (ths) => ths.map((th) => th.textContent));
      assert.equal(header[4], 'device');
    } finally {
      serve.child.kill('SIGTERM');
      await serve.done;
    }
  });
});
