#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's built-in runner, so helpers
// and fixtures beside the tests are not mistaken for test files. Extra arguments narrow the set
// to files whose path contains one of them, e.g. `node scripts/run-tests.mjs comm/ data/`.
//
// Two files run at once (node's default on 2 cores is one): many files mostly wait on sockets,
// child processes and deadlines, and overlap well with one that computes. A file whose assertions
// depend on having the machine to itself (measured speeds, CPU quotas) says so with a line
// `// run-tests: alone (why)` and runs after the others, one at a time. `--concurrency N` (or
// SMOLCLUSTER_TEST_CONCURRENCY=N) changes how many run at once; 1 runs everything in order.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return testFiles(p);
    return e.name.endsWith('.test.js') ? [p] : [];
  });
}

/** `--concurrency N` out of the arguments (the rest are filters), else the environment's (unless empty), else 2. */
function parseArgs(argv) {
  const filters = [];
  let concurrency = process.env.SMOLCLUSTER_TEST_CONCURRENCY || '2';
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--concurrency') concurrency = argv[++i];
    else if (argv[i].startsWith('--concurrency=')) concurrency = argv[i].slice('--concurrency='.length);
    else filters.push(argv[i]);
  }
  const n = Number(concurrency);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`run-tests: --concurrency (or SMOLCLUSTER_TEST_CONCURRENCY) must be a whole number ≥ 1, got ${JSON.stringify(concurrency)}`);
    process.exit(2);
  }
  return { filters, concurrency: n };
}

const ALONE = /^\s*\/\/ run-tests: alone\b/m;

/** One `node --test` over `files`, `concurrency` at a time; its exit status. */
function runFiles(files, concurrency) {
  if (files.length === 0) return 0;
  const args = ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files];
  return spawnSync(process.execPath, args, { stdio: 'inherit' }).status ?? 1;
}

const { filters, concurrency } = parseArgs(process.argv.slice(2));
const files = testFiles('dist/test')
  .filter((f) => filters.length === 0 || filters.some((s) => relative('dist/test', f).includes(s)))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
if (concurrency === 1) process.exit(runFiles(files, 1));
const alone = files.filter((f) => ALONE.test(readFileSync(f, 'utf8')));
const shared = files.filter((f) => !alone.includes(f));
const sharedStatus = runFiles(shared, concurrency);
if (alone.length > 0) console.log(`\nrun-tests: ${alone.length} file(s) that run alone: ${alone.map((f) => relative('dist/test', f)).join(', ')}`);
const aloneStatus = runFiles(alone, 1);
process.exit(sharedStatus || aloneStatus);
