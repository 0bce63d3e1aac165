/**
 * scripts/run-tests.mjs: two files at a time by default, files marked `// run-tests: apart` after
 * them beside each other only, a file marked `// run-tests: alone` last and by itself,
 * `--concurrency 1` one at a time in order, filters still narrowing the set, `--isolation none`
 * files sharing a process unless marked `// run-tests: own process`. Run in a temporary folder
 * whose dist/test holds files that log when they start and end.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

const SCRIPT = fileURLToPath(new URL('../../../scripts/run-tests.mjs', import.meta.url));

let root = '';
const log = (): string => join(root, 'order.log');

/** A test file that logs its start, waits `ms` (long enough for a second file to start beside it) and logs its end. */
function fakeTest(name: string, ms: number, marker = ''): string {
  return `${marker}import { appendFileSync } from 'node:fs';
appendFileSync(${JSON.stringify(log())}, 'start ${name}\\n');
await new Promise((r) => setTimeout(r, ${ms}));
appendFileSync(${JSON.stringify(log())}, 'end ${name}\\n');
`;
}

function runTests(...args: string[]): { status: number | null; output: string; order: string[] } {
  return runTestsIn(root, ...args);
}

function runTestsIn(cwd: string, ...args: string[]): { status: number | null; output: string; order: string[] } {
  rmSync(log(), { force: true });
  // Without NODE_TEST_CONTEXT, which tells a node --test started inside a test to report to its parent.
  const env: NodeJS.ProcessEnv = { ...process.env, SMOLCLUSTER_TEST_CONCURRENCY: '' };
  delete env.NODE_TEST_CONTEXT;
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { cwd, encoding: 'utf8', timeout: 60_000, env });
  let order: string[] = [];
  try {
    order = readFileSync(log(), 'utf8').trim().split('\n');
  } catch {
    // nothing ran
  }
  return { status: r.status, output: r.stdout + r.stderr, order };
}

/** A test file with one node:test test that logs the process it ran in (and fails where `fails`). */
function pidTest(name: string, marker = '', fails = false): string {
  return `${marker}import { appendFileSync } from 'node:fs';
import { test } from 'node:test';
test('${name}', () => {
  appendFileSync(${JSON.stringify(log())}, '${name} ' + process.pid + '\\n');
  if (${fails}) throw new Error('${name} failed on purpose');
});
`;
}

/** A second folder for --isolation none: x and y share a process, z is marked to have its own, w fails. */
let isolated = '';

before(() => {
  root = mkdtempSync(join(tmpdir(), 'smolcluster-run-tests-'));
  isolated = mkdtempSync(join(tmpdir(), 'smolcluster-run-tests-isolation-'));
  mkdirSync(join(isolated, 'dist/test/fails'), { recursive: true });
  writeFileSync(join(isolated, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(join(isolated, 'dist/test/x.test.js'), pidTest('x'));
  writeFileSync(join(isolated, 'dist/test/y.test.js'), pidTest('y'));
  writeFileSync(join(isolated, 'dist/test/z.test.js'), pidTest('z', '// run-tests: own process (it checks a first load)\n'));
  writeFileSync(join(isolated, 'dist/test/fails/w.test.js'), pidTest('w', '', true));
  mkdirSync(join(root, 'dist/test/sub'), { recursive: true });
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(join(root, 'dist/test/a.test.js'), fakeTest('a', 1500));
  writeFileSync(join(root, 'dist/test/sub/b.test.js'), fakeTest('b', 1500));
  writeFileSync(join(root, 'dist/test/c.test.js'), fakeTest('c', 10, '// run-tests: alone (it measures something)\n'));
  writeFileSync(join(root, 'dist/test/d.test.js'), fakeTest('d', 1000, '// run-tests: apart (it waits on deadlines)\n'));
  writeFileSync(join(root, 'dist/test/e.test.js'), fakeTest('e', 1000, '// run-tests: apart (it waits on deadlines)\n'));
  writeFileSync(join(root, 'dist/test/helper.js'), 'throw new Error("a helper is not a test file");\n');
});
after(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(isolated, { recursive: true, force: true });
});

describe('scripts/run-tests.mjs', { timeout: 120_000 }, () => {
  it('runs two files at once, then those marked apart two at a time, then the one marked alone by itself', () => {
    // The environment variable empty: the default.
    const r = runTests();
    assert.equal(r.status, 0, r.output);
    const at = (line: string): number => r.order.indexOf(line);
    assert.equal(r.order.length, 10, r.order.join(', '));
    assert.ok(at('start b') < at('end a') && at('start a') < at('end b'), `a and b overlap: ${r.order.join(', ')}`);
    const sharedEnd = Math.max(at('end a'), at('end b'));
    assert.ok(at('start d') > sharedEnd && at('start e') > sharedEnd, `d and e run after the shared files: ${r.order.join(', ')}`);
    assert.ok(at('start e') < at('end d') && at('start d') < at('end e'), `d and e overlap: ${r.order.join(', ')}`);
    assert.ok(at('start c') > at('end d') && at('start c') > at('end e'), `c runs last: ${r.order.join(', ')}`);
    assert.match(r.output, /run-tests: 2 file\(s\) that run apart from the others, 2 at a time: d\.test\.js, e\.test\.js/);
    assert.match(r.output, /run-tests: 1 file\(s\) that run alone: c\.test\.js/);
  });

  it('--concurrency 1 runs every file by itself, in path order', () => {
    const r = runTests('--concurrency', '1');
    assert.equal(r.status, 0, r.output);
    assert.deepEqual(r.order, ['start a', 'end a', 'start c', 'end c', 'start d', 'end d', 'start e', 'end e', 'start b', 'end b']);
  });

  it('filters still narrow the set; a bad --concurrency is refused, naming the flag', () => {
    const r = runTests('sub/');
    assert.equal(r.status, 0, r.output);
    assert.deepEqual(r.order, ['start b', 'end b']);
    const bad = runTests('--concurrency=two');
    assert.equal(bad.status, 2);
    assert.match(bad.output, /--concurrency \(or SMOLCLUSTER_TEST_CONCURRENCY\) must be a whole number ≥ 1, got "two"/);
    assert.deepEqual(bad.order, []);
  });

  it('--isolation none imports the files into --concurrency processes, a file marked own process into one by itself; a failed test fails the run', () => {
    const r = runTestsIn(isolated, '--isolation', 'none', '--concurrency', '1', 'x.test', 'y.test', 'z.test');
    assert.equal(r.status, 0, r.output);
    const pid = Object.fromEntries(r.order.map((line) => line.split(' ')));
    assert.deepEqual(Object.keys(pid).sort(), ['x', 'y', 'z'], r.order.join(', '));
    assert.equal(pid.x, pid.y, 'x and y ran in one process');
    assert.notEqual(pid.z, pid.x, 'z ran in a process of its own');
    assert.match(r.output, /run-tests: process 1 of 1 \(2 files\) exited with 0 after \d+ s/);

    const failed = runTestsIn(isolated, '--isolation=none', 'fails/', 'x.test');
    assert.equal(failed.status, 1, failed.output);
    assert.match(failed.output, /w failed on purpose/);
    const bad = runTestsIn(isolated, '--isolation', 'threads');
    assert.equal(bad.status, 2);
    assert.match(bad.output, /--isolation \(or SMOLCLUSTER_TEST_ISOLATION\) must be process or none, got "threads"/);
  });
});
