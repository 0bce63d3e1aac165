#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's built-in runner, so helpers
// and fixtures beside the tests are not mistaken for test files. Extra arguments narrow the set
// to files whose path contains one of them, e.g. `node scripts/run-tests.mjs comm/ data/`.
//
// Two files run at once (node's default on 2 cores is one): many files mostly wait on sockets,
// child processes and deadlines, and overlap well with one that computes. After them come the files
// a computing neighbour can break, each saying why in a marker line:
//  - `// run-tests: apart (why)`: processes that judge each other by deadlines while faults stall
//    them. They mostly wait, so they run beside each other only, two at a time (the seven of them:
//    47 CPU-s over 90 s one at a time; 49 s two at a time, 52 s with a third process spinning a
//    core beside them, passing each time);
//  - `// run-tests: alone (why)`: a file that computes flat out and judges speeds or deadlines by
//    it (CPU quotas, a heartbeat under load): last, one at a time, nothing beside it.
// `--concurrency N` (or SMOLCLUSTER_TEST_CONCURRENCY=N) changes how many run at once (the files
// apart at most N too); 1 runs everything in order.
//
// `--isolation none` (or SMOLCLUSTER_TEST_ISOLATION=none; node 22's --test-isolation=none, which
// node 20 lacks) imports the files into `concurrency` processes instead of one process each: for the
// kernel and op tests under qemu (arm64-check.sh), where a node process and its imports take ≈ 4 s
// (on x86-64 they take ≈ 0.4 s, and sharing saved nothing). A file that needs a process of its own
// (it asserts what is registered process-wide, or opens a device the others must not share) says
// `// run-tests: own process (why)` and runs in one regardless.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return testFiles(p);
    return e.name.endsWith('.test.js') ? [p] : [];
  });
}

/** `--concurrency N` and `--isolation process|none` out of the arguments (the rest are filters), else the environment's (unless empty), else 2 and process. */
function parseArgs(argv) {
  const filters = [];
  let concurrency = process.env.SMOLCLUSTER_TEST_CONCURRENCY || '2';
  let isolation = process.env.SMOLCLUSTER_TEST_ISOLATION || 'process';
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--concurrency') concurrency = argv[++i];
    else if (argv[i].startsWith('--concurrency=')) concurrency = argv[i].slice('--concurrency='.length);
    else if (argv[i] === '--isolation') isolation = argv[++i];
    else if (argv[i].startsWith('--isolation=')) isolation = argv[i].slice('--isolation='.length);
    else filters.push(argv[i]);
  }
  const n = Number(concurrency);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`run-tests: --concurrency (or SMOLCLUSTER_TEST_CONCURRENCY) must be a whole number ≥ 1, got ${JSON.stringify(concurrency)}`);
    process.exit(2);
  }
  if (isolation !== 'process' && isolation !== 'none') {
    console.error(`run-tests: --isolation (or SMOLCLUSTER_TEST_ISOLATION) must be process or none, got ${JSON.stringify(isolation)}`);
    process.exit(2);
  }
  return { filters, concurrency: n, isolation };
}

const ALONE = /^\s*\/\/ run-tests: alone\b/m;
const APART = /^\s*\/\/ run-tests: apart\b/m;
/** How many files apart run at once (see above). */
const APART_CONCURRENCY = 2;
const OWN_PROCESS = /^\s*\/\/ run-tests: own process\b/m;

/** `files` in `n` groups of about equal bytes (largest first, each to the lightest group). */
function balancedGroups(files, n) {
  const groups = Array.from({ length: n }, () => ({ files: [], bytes: 0 }));
  for (const f of [...files].sort((a, b) => statSync(b).size - statSync(a).size)) {
    const lightest = groups.reduce((a, b) => (b.bytes < a.bytes ? b : a));
    lightest.files.push(f);
    lightest.bytes += statSync(f).size;
  }
  return groups.map((g) => g.files.sort()).filter((g) => g.length > 0);
}

/** One process that imports `files` in order: node:test runs their tests as one tree. Resolves to its exit status and output. */
function importAll(files) {
  const script = 'for (const f of process.argv.slice(1)) await import(f);';
  const urls = files.map((f) => pathToFileURL(resolve(f)).href);
  const child = spawn(process.execPath, ['--test-reporter=spec', '--input-type=module', '-e', script, ...urls], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  return new Promise((done) => child.on('close', (code, signal) => done({ status: code ?? 1, output: signal ? `${output}\nrun-tests: killed by ${signal}\n` : output })));
}

/** `files` in `concurrency` shared processes, each one's report printed whole when it ends; the first non-zero exit status, else 0. */
async function runShared(files, concurrency) {
  const groups = balancedGroups(files, concurrency);
  const results = await Promise.all(groups.map(async (group, i) => {
    const start = Date.now();
    const r = await importAll(group);
    const seconds = Math.round((Date.now() - start) / 1000);
    process.stdout.write(`\nrun-tests: process ${i + 1} of ${groups.length} (${group.length} files) exited with ${r.status} after ${seconds} s\n${r.output}`);
    return r.status;
  }));
  return results.find((s) => s !== 0) ?? 0;
}

/** One `node --test` over `files`, `concurrency` at a time; its exit status. */
function runFiles(files, concurrency) {
  if (files.length === 0) return 0;
  const args = ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files];
  return spawnSync(process.execPath, args, { stdio: 'inherit' }).status ?? 1;
}

const { filters, concurrency, isolation } = parseArgs(process.argv.slice(2));
const files = testFiles('dist/test')
  .filter((f) => filters.length === 0 || filters.some((s) => relative('dist/test', f).includes(s)))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
if (concurrency === 1 && isolation === 'process') process.exit(runFiles(files, 1));
const alone = files.filter((f) => ALONE.test(readFileSync(f, 'utf8')));
const apart = files.filter((f) => APART.test(readFileSync(f, 'utf8')));
const shared = files.filter((f) => !alone.includes(f) && !apart.includes(f));
let sharedStatus;
if (isolation === 'none') {
  const own = shared.filter((f) => OWN_PROCESS.test(readFileSync(f, 'utf8')));
  const importedStatus = await runShared(shared.filter((f) => !own.includes(f)), concurrency);
  sharedStatus = runFiles(own, concurrency) || importedStatus;
} else {
  sharedStatus = runFiles(shared, concurrency);
}
const apartConcurrency = Math.min(concurrency, APART_CONCURRENCY);
const named = (list) => list.map((f) => relative('dist/test', f)).join(', ');
if (apart.length > 0) console.log(`\nrun-tests: ${apart.length} file(s) that run apart from the others, ${apartConcurrency} at a time: ${named(apart)}`);
const apartStatus = runFiles(apart, apartConcurrency);
if (alone.length > 0) console.log(`\nrun-tests: ${alone.length} file(s) that run alone: ${named(alone)}`);
const aloneStatus = runFiles(alone, 1);
process.exit(sharedStatus || apartStatus || aloneStatus);
