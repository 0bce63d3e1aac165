import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JsonlWriter } from '../../src/metrics/jsonl.js';
import { tempDir } from '../helpers/cluster.js';

const WRITER = new URL('../../src/metrics/jsonl.js', import.meta.url).href;

let dir = '';
before(() => {
  dir = tempDir('jsonl');
});
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A child process that appends `records` lines to `file` through JsonlWriter, flushing every
 * `flushEvery`; each line carries a payload of varying length so flushes are of many sizes
 * (up to a few hundred kB). All writers start writing at the same wall-clock time `startAt`.
 */
function writer(file: string, id: number, records: number, flushEvery: number, startAt: number): Promise<number | null> {
  const script = `
    import { JsonlWriter } from ${JSON.stringify(WRITER)};
    const [file, id, records, flushEvery, startAt] = [process.argv[1], +process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5]];
    const w = new JsonlWriter(file, flushEvery);
    await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
    for (let i = 0; i < records; i++) {
      const pad = String.fromCharCode(97 + ((id + i) % 26)).repeat((i * 131 + id * 977) % 5000);
      w.write({ writer: id, i, pad, text: 'quotes " and \\\\ and \\n newlines ✓' });
    }
    w.close();
  `;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, file, String(id), String(records), String(flushEvery), String(startAt)], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

describe('JsonlWriter', { timeout: 60_000 }, () => {
  it('several processes appending to one file concurrently produce only whole, parseable lines', async () => {
    const file = join(dir, 'shared', 'metrics.jsonl');
    const plan = [
      { records: 3000, flushEvery: 64 },
      { records: 3000, flushEvery: 1 },
      { records: 2000, flushEvery: 7 },
      { records: 1500, flushEvery: 200 },
    ];
    const startAt = Date.now() + 500;
    const codes = await Promise.all(plan.map((p, id) => writer(file, id, p.records, p.flushEvery, startAt)));
    assert.deepEqual(codes, plan.map(() => 0));

    const text = readFileSync(file, 'utf8');
    assert.ok(text.endsWith('\n'));
    const lines = text.slice(0, -1).split('\n');
    assert.equal(lines.length, plan.reduce((n, p) => n + p.records, 0));
    const seen = plan.map(() => [] as number[]);
    for (const [n, line] of lines.entries()) {
      let r: { writer: number; i: number; pad: string; text: string };
      try {
        r = JSON.parse(line);
      } catch {
        assert.fail(`line ${n + 1} is not JSON (interleaved?): ${line.slice(0, 120)}…`);
      }
      assert.equal(r.pad.length, (r.i * 131 + r.writer * 977) % 5000, `line ${n + 1} lost bytes`);
      assert.equal(r.text, 'quotes " and \\ and \n newlines ✓');
      seen[r.writer].push(r.i);
    }
    // Each writer's records all arrived, in its own order.
    for (const [id, p] of plan.entries()) assert.deepEqual(seen[id], [...Array(p.records).keys()], `writer ${id}`);
    // The writers really overlapped (otherwise the test proves nothing): some writer's block sits
    // between two blocks of another.
    const order = lines.map((l) => (JSON.parse(l) as { writer: number }).writer);
    const switches = order.filter((w, i) => i > 0 && w !== order[i - 1]).length;
    assert.ok(switches > plan.length, `only ${switches} switches between writers: they ran one after another`);
  });

  it('buffers until flushEvery or close, and appends to an existing file', () => {
    const file = join(dir, 'single', 'm.jsonl');
    const w = new JsonlWriter(file, 3);
    w.write({ a: 1 });
    w.write({ a: 2 });
    assert.equal(readFileSync(file, 'utf8'), '');
    w.write({ a: 3 });
    assert.equal(readFileSync(file, 'utf8'), '{"a":1}\n{"a":2}\n{"a":3}\n');
    w.write({ a: 4 });
    w.close();
    w.close(); // idempotent
    const again = new JsonlWriter(file);
    again.write({ a: 5 });
    again.close();
    assert.deepEqual(readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l).a), [1, 2, 3, 4, 5]);
  });
});
