import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/cluster.js';
import { curve, writeRun } from '../validate/fixtures.js';

let dir = '';
before(() => {
  dir = tempDir('validate-cli');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('smolcluster validate (exit codes and reports)', () => {
  it('0: every step within tolerance; prints the table and PASS; --output writes the JSON report', async () => {
    const a = writeRun(dir, 'a.json', { losses: curve(30) });
    const b = writeRun(dir, 'b.json', { losses: curve(30).map((x) => x * (1 + 1e-7)), workers: 2 });
    const report = join(dir, 'report.json');
    const r = await runCli(['validate', a, b, '--tolerance', '0.01', '--output', report]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /30\/30 steps within tolerance/);
    assert.match(r.stdout, /\nPASS\n$/);
    const j = JSON.parse(readFileSync(report, 'utf8'));
    assert.equal(j.schema, 'smolcluster-validation');
    assert.equal(j.schema_version, 1);
    assert.equal(j.summary.verdict, 'pass');
    assert.equal(j.steps.length, 30);
    assert.deepEqual(Object.keys(j.steps[0]), ['step', 'reference', 'candidate', 'abs_delta', 'rel_delta', 'pass']);
    assert.deepEqual([j.reference.file, j.candidate.file, j.candidate.num_workers], [a, b, 2]);
  });

  it('1: a step beyond tolerance; the report names it', async () => {
    const losses = curve(20);
    const a = writeRun(dir, 'c.json', { losses });
    const b = writeRun(dir, 'd.json', { losses: losses.map((x, i) => (i === 12 ? x * 1.05 : x)) });
    const r = await runCli(['validate', a, b, '--tolerance', '0.01']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^12\s.*FAIL$/m);
    assert.match(r.stdout, /FAIL: 1 of 20 steps differ by more than the tolerance \(first: step 12\)/);
    // A looser tolerance lets it through.
    assert.equal((await runCli(['validate', a, b, '--tolerance', '0.06'])).code, 0);
  });

  it('1: step counts differ', async () => {
    const a = writeRun(dir, 'e.json', { losses: curve(20) });
    const b = writeRun(dir, 'f.json', { losses: curve(15) });
    const r = await runCli(['validate', a, b]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /step counts differ: 20 in .*e\.json, 15 in .*f\.json/);
  });

  it('2: a missing, malformed or foreign file, named in one line; missing arguments', async () => {
    const good = writeRun(dir, 'g.json', { losses: curve(5) });
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"schema": "smolcluster-run", ');
    const foreign = join(dir, 'foreign.json');
    writeFileSync(foreign, JSON.stringify({ schema: 'smolcluster-train-result', schema_version: 1 }));
    const cases: Array<[string[], RegExp]> = [
      [[good, join(dir, 'nope.json')], /nope\.json: no such file/],
      [[bad, good], /bad\.json: is not valid JSON/],
      [[good, foreign], /foreign\.json: is not a smolcluster-run file/],
    ];
    for (const [args, why] of cases) {
      const r = await runCli(['validate', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^smolcluster: error: /);
      assert.match(lines[0], why);
      assert.equal(r.stdout, '');
    }
    const usage = await runCli(['validate', good]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /missing required argument 'candidate'/);
    assert.equal((await runCli(['validate', good, good, '--tolerance', 'x'])).code, 2);
  });
});
