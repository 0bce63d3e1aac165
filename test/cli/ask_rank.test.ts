/**
 * `worker` without --rank: on a terminal it asks (as SmolCluster's worker did), off one it fails
 * naming --rank. The terminal is a real pseudo-terminal (util-linux `script`).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { askRank, withAskedRank } from '../../src/cli/ask_rank.js';
import { CLI, runCli } from '../helpers/cli.js';
import { freePort, tempDir } from '../helpers/cluster.js';

function terminal(answers: string[]): { input: PassThrough & { isTTY: boolean }; output: PassThrough; shown: () => string } {
  const input = Object.assign(new PassThrough(), { isTTY: true });
  const output = new PassThrough();
  let shown = '';
  output.on('data', (d: Buffer) => {
    shown += d.toString();
    // Answer each prompt as it appears.
    if (d.toString().endsWith(': ')) input.write(`${answers.shift() ?? ''}\n`);
  });
  return { input, output, shown: () => shown };
}

describe('worker rank prompt', { timeout: 60_000 }, () => {
  it('asks on a terminal, again after a wrong answer, and gives up naming --rank after three', async () => {
    const t = terminal(['7', '1']);
    assert.equal(await askRank(2, t), 1);
    assert.match(t.shown(), /this worker's rank \(0 to 1; a ps server is 0\): "7" is not a rank/);
    await assert.rejects(askRank(2, terminal(['x', '-1', '2'])), /--rank.*"2" is not a rank/);
  });

  it('asks nothing when a flag, the environment or no terminal gives the answer', async () => {
    const t = terminal([]);
    assert.deepEqual(await withAskedRank({ rank: 1, worldSize: 2 }, t, {}), { rank: 1, worldSize: 2 });
    assert.deepEqual(await withAskedRank({ worldSize: 2 }, t, { RANK: '1' }), { worldSize: 2 });
    const notTty = { input: new PassThrough(), output: new PassThrough() };
    assert.deepEqual(await withAskedRank({ worldSize: 2 }, notTty, {}), { worldSize: 2 });
    assert.equal(t.shown(), '');
  });

  it('end to end: a worker on a pseudo-terminal takes the typed rank; off a terminal it names --rank', async () => {
    const port = await freePort();
    const dir = tempDir('ask-rank');
    const cmd = `${process.execPath} ${CLI} worker --world-size 1 --master 127.0.0.1:${port} --dataset synthetic-regression --max-steps 2 --threads 1 --experiments-dir ${dir}`;
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, SMOLCLUSTER_TOKEN: 'ask-rank-test-token-0123456789abcdef' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (/rank \(0 to 0\): $/.test(out)) child.stdin.write('0\n');
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, out);
    assert.match(out, /this worker's rank \(0 to 0\): /);
    assert.match(out, /rank 0 of 1/);
    const off = await runCli(['worker', '--world-size', '2', '--master', `127.0.0.1:${port}`]);
    assert.equal(off.code, 1);
    assert.match(off.stderr, /--rank.*no rank: pass --rank/);
  });
});
