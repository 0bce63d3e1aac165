import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { type Server, createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Exited, TEST_TOKEN, errorLines, freePort, runAll, runCliProcess, sleep, startCli, stepRecords, tempDir } from '../helpers/cluster.js';

// run-tests: apart (it bounds deadlines and exits in wall time, with its own cases already running at
// once: with a second file beside it on a loaded machine a worker went past its 20 s limit)

let dir = '';
before(() => {
  dir = tempDir('worker');
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** `worker` flags shared by every test: tiny runs, one thread, results in the temp dir. */
function workerArgs(name: string, ...extra: string[]): string[] {
  return ['worker', '--threads', '1', '--max-steps', '5', '--experiments-dir', dir, '--name', name, ...extra];
}

const withToken = { SMOLCLUSTER_TOKEN: TEST_TOKEN };

/**
 * Wall time of a worker that fails on its flags, run beside the process under test: what start-up
 * and exit cost on this machine right now (a loaded 2-core machine stretches them to seconds), so
 * wall-time bounds measure the wait itself.
 */
async function startupMs(): Promise<number> {
  const r = await runCliProcess(workerArgs('startup', '--rank', '9', '--world-size', '2', '--master', '127.0.0.1:1'), { env: withToken, timeoutMs: 20_000 });
  assert.match(r.stderr, /rank 9 is outside/);
  return r.ms;
}

/** Exactly one `smolcluster: error:` line, no stack trace, non-zero exit; returns the line. */
function oneErrorLine(r: Exited, what: string): string {
  assert.notEqual(r.code, 0, `${what}: exit code ${r.code}`);
  assert.equal(r.timedOut, false, `${what}: hung`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: stack trace printed:\n${r.stderr}`);
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, `${what}: expected one error line, got:\n${r.stderr}`);
  return lines[0];
}

describe('smolcluster worker (child processes on 127.0.0.1)', { concurrency: true, timeout: 60_000 }, () => {
  it('master port in use: one line naming the address', async () => {
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const [r, startup] = await Promise.all([
        runCliProcess(workerArgs('busy', '--rank', '0', '--world-size', '2', '--master', `127.0.0.1:${port}`, '--timeout', '5'), { env: withToken, timeoutMs: 20_000 }),
        startupMs(),
      ]);
      const line = oneErrorLine(r, 'port in use');
      assert.ok(line.includes(`127.0.0.1:${port}`), line);
      assert.match(line, /in use/);
      // It fails at once, not after the 5 s timeout.
      assert.ok(r.ms < startup + 3000, `took ${Math.round(r.ms)} ms (start-up alone ${Math.round(startup)} ms)`);
    } finally {
      server.close();
    }
  });

  it('unreachable master: exits within the timeout with one line naming the master address', async () => {
    const port = await freePort();
    const [r, startup] = await Promise.all([
      runCliProcess(workerArgs('unreachable', '--rank', '1', '--world-size', '2', '--master', `127.0.0.1:${port}`, '--timeout', '2'), {
        env: withToken, timeoutMs: 20_000,
      }),
      startupMs(),
    ]);
    const line = oneErrorLine(r, 'unreachable master');
    assert.ok(line.includes(`127.0.0.1:${port}`), line);
    assert.match(line, /master/);
    // The deadline is the worker's own: the wait it reports is bounded by --timeout. The wall time
    // adds process start-up, which a loaded 2-core machine stretches: it is bounded against a failing
    // start-up measured beside it.
    const waited = Number(/after (\d+) ms/.exec(line)?.[1]);
    assert.ok(waited <= 2000 + 500, `waited ${waited} ms with --timeout 2: ${line}`);
    assert.ok(r.ms < startup + 2000 + 3000, `took ${Math.round(r.ms)} ms with --timeout 2 (start-up alone ${Math.round(startup)} ms)`);
  });

  it('rendezvous deadline: rank 0 of 3 with only rank 1 started names rank 2', async () => {
    const port = await freePort();
    const common = ['--world-size', '3', '--master', `127.0.0.1:${port}`, '--timeout', '3'];
    const r0 = startCli(workerArgs('deadline', '--rank', '0', ...common), { env: withToken, timeoutMs: 20_000 });
    await sleep(300); // let rank 0 bind the store first
    const r1 = startCli(workerArgs('deadline', '--rank', '1', ...common), { env: withToken, timeoutMs: 20_000 });
    const [e0, e1, startup] = await Promise.all([r0.done, r1.done, startupMs()]);
    for (const [rank, e] of [[0, e0], [1, e1]] as const) {
      const line = oneErrorLine(e, `rank ${rank}`);
      const waited = Number(/rendezvous timed out after (\d+) ms waiting for rank 2\b/.exec(line)?.[1]);
      assert.ok(waited >= 2500 && waited <= 3500, `waited ${waited} ms with --timeout 3: ${line}`);
      assert.match(line, /never registered/, line);
      assert.ok(e.ms < startup + 3000 + 3000, `rank ${rank} took ${Math.round(e.ms)} ms with --timeout 3 (start-up alone ${Math.round(startup)} ms)`);
    }
  });

  it('torchrun-style environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) instead of flags', async () => {
    const port = await freePort();
    const env = (rank: number): Record<string, string> => ({
      ...withToken, RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port),
    });
    const [e0, e1] = await runAll([
      { args: workerArgs('torchrun', '--timeout', '20'), env: env(0) },
      { args: workerArgs('torchrun', '--timeout', '20'), env: env(1) },
    ], 40_000);
    assert.equal(e0.code, 0, e0.stderr);
    assert.equal(e1.code, 0, e1.stderr);
    assert.match(e0.stdout, /with 2 workers \(allreduce\): 5 steps/);
    assert.equal(e1.stdout, '', 'only rank 0 prints the summary');
    const steps = stepRecords(join(dir, 'torchrun', 'metrics.jsonl'));
    assert.deepEqual(steps.map((s) => `${s.step}/${s.rank}`), [0, 1, 2, 3, 4].flatMap((s) => [`${s}/0`, `${s}/1`]));
    assert.equal(JSON.parse(readFileSync(join(dir, 'torchrun', 'result.json'), 'utf8')).workers, 2);
  });

  it('by hand without --name: one folder, rank 0\'s; the other rank says it finished and where the results are', async () => {
    const port = await freePort();
    const root = join(dir, 'unnamed');
    const args = (rank: number): string[] => ['worker', '--threads', '1', '--max-steps', '3', '--experiments-dir', root, '--rank', String(rank), '--world-size', '2', '--master', `127.0.0.1:${port}`, '--timeout', '20'];
    const [e0, e1] = await runAll([{ args: args(0), env: withToken }, { args: args(1), env: withToken }], 40_000);
    assert.equal(e0.code, 0, e0.stderr);
    assert.equal(e1.code, 0, e1.stderr);
    const folders = readdirSync(root);
    assert.equal(folders.length, 1, `one run folder, got ${folders.join(', ')}`);
    assert.deepEqual(readdirSync(join(root, folders[0])).filter((f) => f.endsWith('.json')).sort(), ['config.json', 'result.json']);
    assert.match(e1.stderr, new RegExp(`rank 1 finished in [\\d.]+ s \\(1 thread\\); rank 0 writes the results to ${join(root, folders[0]).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} on its host`));
    assert.match(e0.stderr, /master 127\.0\.0\.1:\d+ \(--master\),/, 'a source of both host and port named once');
  });

  it('config mismatch (different --lr): refused at connect, the signature mismatch reported on both sides', async () => {
    const port = await freePort();
    const common = ['--world-size', '2', '--master', `127.0.0.1:${port}`];
    // (--timeout is not part of the run signature; --lr is.)
    // Rank 0 would wait 30 s: the refusal ends its wait at once (issue 33 §3).
    const r0 = startCli(workerArgs('mismatch', '--rank', '0', '--lr', '0.1', '--timeout', '30', ...common), { env: withToken, timeoutMs: 20_000 });
    await sleep(300);
    const r1 = startCli(workerArgs('mismatch', '--rank', '1', '--lr', '0.2', '--timeout', '15', ...common), { env: withToken, timeoutMs: 30_000 });
    const [e0, e1, startup] = await Promise.all([r0.done, r1.done, startupMs()]);
    // The refused rank fails at once (long before its 15 s deadline), saying why.
    const line1 = oneErrorLine(e1, 'rank 1');
    assert.match(line1, /signature mismatch/, line1);
    assert.ok(e1.ms < startup + 5000, `rank 1 took ${Math.round(e1.ms)} ms to be refused (start-up alone ${Math.round(startup)} ms)`);
    // The store's side logs the refusal (naming rank 1), then gives up at its deadline.
    assert.notEqual(e0.code, 0);
    assert.match(e0.stderr, /refused .*rank 1.*signature mismatch/);
    const line0 = oneErrorLine(e0, 'rank 0');
    assert.match(line0, /waiting for rank 1\b/, line0);
    // Both sides name the differing flag with both values, not two hashes.
    assert.match(line0, /--lr: the store has 0\.1, rank 1 has 0\.2/, line0);
    assert.match(line1, /--lr: the store has 0\.1, rank 1 has 0\.2/, line1);
    assert.ok(e0.ms < startup + 8000, `rank 0 took ${Math.round(e0.ms)} ms to stop (start-up alone ${Math.round(startup)} ms)`);
    // Neither trained a step.
    assert.deepEqual(stepRecords(join(dir, 'mismatch', 'metrics.jsonl')), []);
  });

  it('missing cluster token: one line naming SMOLCLUSTER_TOKEN', async () => {
    const port = await freePort();
    const r = await runCliProcess(workerArgs('notoken', '--rank', '1', '--world-size', '2', '--master', `127.0.0.1:${port}`, '--timeout', '2'), {
      env: { SMOLCLUSTER_TOKEN: undefined }, timeoutMs: 20_000,
    });
    const line = oneErrorLine(r, 'missing token');
    assert.match(line, /SMOLCLUSTER_TOKEN/);
    assert.equal(r.stdout, '');
  });

  it('missing placement: one line naming the flag and the variable', async () => {
    const r = await runCliProcess(workerArgs('noplace', '--world-size', '2', '--master', '127.0.0.1:1'), {
      env: { ...withToken, RANK: undefined }, timeoutMs: 20_000,
    });
    const line = oneErrorLine(r, 'missing rank');
    assert.match(line, /--rank/);
    assert.match(line, /\bRANK\b/);
  });
});
