import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadMnist } from '../../src/data/mnist.js';
import { loadModel, readModelHeader } from '../../src/nn/checkpoint.js';
import { type ModelSpec, createModel } from '../../src/nn/models/index.js';
import { defaultConfig } from '../../src/train/run/config.js';
import { evaluate } from '../../src/train/loop/evaluate.js';
import { snakeCaseKeys } from '../../src/util/snake_case.js';
import { type CliResult, runCli, squash } from '../helpers/cli.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'smolcluster-cli-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Flags `smolcluster train` must offer (the list); the help may list more. */
const TRAIN_FLAGS = [
  '--model <type>', '--hidden <widths>', '--epochs <n>', '--batch-size <n>', '--lr <rate>', '--optimizer <name>',
  '--momentum <m>', '--weight-decay <wd>', '--schedule <name>', '--warmup-steps <n>', '--clip-grad-norm <max>',
  '--seed <n>', '--eval-every <steps>', '--max-steps <n>', '--data-dir <dir>', '--output <file>', '--save <file>',
  '--threads <n>', '--backend <name>', '--layers <n>', '--width <n>', '--heads <n>', '--context <n>', '--init <file>', '--precision <name>', '--save-dtype <dtype>', '-h, --help',
];

/**
 * Every option of a commander help text with its description (continuation lines joined,
 * whitespace squashed): "  --flag <arg>   description" lines, continued by deeper-indented ones.
 */
function optionDescriptions(help: string): Map<string, string> {
  const out = new Map<string, string>();
  const section = help.slice(help.indexOf('Options:') + 'Options:'.length).split('\n');
  let current: string | null = null;
  for (const line of section) {
    if (/^\S/.test(line)) break; // the next section (e.g. "Commands:")
    const m = /^ {2}(-\S.*?)(?: {2,}(.*))?$/.exec(line);
    if (m) {
      current = m[1].trim();
      out.set(current, squash(m[2] ?? ''));
    } else if (current && line.trim() !== '') {
      out.set(current, squash(`${out.get(current)} ${line}`));
    }
  }
  return out;
}

function assertOneLineError(r: CliResult, flag: string, what: string): void {
  assert.notEqual(r.code, 0, `${what}: exit code ${r.code}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `${what}: expected a one-line error, got:\n${r.stderr}`);
  assert.ok(lines[0].includes(flag), `${what}: the error does not name ${flag}: ${lines[0]}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: stack trace printed`);
  assert.equal(r.stdout, '', `${what}: nothing on stdout`);
}

describe('smolcluster CLI (child process)', () => {
  it('--help lists the commands and global flags', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Usage: smolcluster/);
    assert.match(r.stdout, /train \[options\]\s+train or fine-tune a model \(MNIST by default;/);
    const desc = optionDescriptions(r.stdout);
    assert.match(desc.get('--verbose') ?? '', /stack trace/);
    assert.ok(desc.has('-V, --version') && desc.has('-h, --help'));
    for (const [flag, d] of desc) assert.ok(d.length >= 10, `${flag} has no description: "${d}"`);
    const v = await runCli(['--version']);
    assert.equal(v.code, 0);
    assert.equal(v.stdout.trim(), JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version);
  });

  it('train --help describes every flag, with the defaults the config really uses', async () => {
    const r = await runCli(['train', '--help']);
    assert.equal(r.code, 0, r.stderr);
    const desc = optionDescriptions(r.stdout);
    for (const flag of TRAIN_FLAGS) assert.ok(desc.has(flag), `train --help does not list ${flag}`);
    for (const [flag, d] of desc) assert.ok(d.length >= 10, `${flag} has no description: "${d}"`);
    // The defaults in the help are the ones defaultConfig applies.
    const mlp = defaultConfig('mlp');
    const cnn = defaultConfig('cnn');
    const has = (flag: string, text: string): void => assert.ok(desc.get(flag)!.includes(text), `${flag}: "${desc.get(flag)}" lacks "${text}"`);
    has('--epochs <n>', `mlp ${mlp.epochs}, cnn ${cnn.epochs}`);
    for (const [flag, key, text] of [
      ['--batch-size <n>', 'batchSize', 'default'], ['--lr <rate>', 'lr', 'default'], ['--momentum <m>', 'momentum', 'default'],
      ['--optimizer <name>', 'optimizer', 'default'], ['--schedule <name>', 'schedule', 'default'],
    ] as const) {
      if (mlp[key] === cnn[key]) {
        has(flag, `${text} ${String(mlp[key])}`);
      } else {
        has(flag, `mlp ${String(mlp[key])}`);
        has(flag, `cnn ${String(cnn[key])}`);
      }
    }
    has('--hidden <widths>', `default ${mlp.hidden.join(',')}`);
    has('--model <type>', 'default: "mlp"');
    has('--seed <n>', 'default: 0');
  });

  it('a short run writes result.json with the documented fields, and --save writes a loadable model', async () => {
    const run = join(dir, 'run');
    mkdirSync(run);
    const output = join(run, 'result.json');
    const save = join(run, 'model.smol');
    const r = await runCli(
      // One thread: quick and steady when other test files share the cores.
      ['train', '--max-steps', '50', '--seed', '3', '--threads', '1', '--output', output, '--save', save, '--experiments-dir', join(dir, 'experiments'), '--name', 'cli-test'],
      { cwd: dir },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^mlp 784-128-10 on mnist: 50 steps, final loss \d+\.\d{4}, test accuracy \d+\.\d\d%/);
    assert.equal(r.stdout.trim().split('\n').length, 1, 'stdout is one summary line');

    const res = JSON.parse(readFileSync(output, 'utf8'));
    assert.equal(res.schema, 'smolcluster-train-result');
    assert.equal(res.schema_version, 1);
    assert.equal(res.steps, 50);
    assert.equal(typeof res.final_loss, 'number');
    assert.ok(res.final_loss > 0 && res.final_loss < 2.3, `final_loss ${res.final_loss}`);
    assert.ok(res.test_accuracy > 0.5 && res.test_accuracy <= 1, `test_accuracy ${res.test_accuracy}`);
    assert.ok(res.samples_per_sec > 0);
    assert.ok(res.wall_seconds > 0 && res.wall_seconds >= res.train_seconds);
    assert.equal(res.parameters, 101770);
    // The resolved configuration, every key in snake_case as in config.json (docs/RESULT.md).
    assert.deepEqual(
      { ...res.config, threads: undefined },
      snakeCaseKeys({ ...defaultConfig('mlp'), seed: 3, maxSteps: 50, threads: undefined, device: 'cpu' }),
    );
    assert.equal(res.config.threads, 1);
    assert.equal(res.threads, 1);

    // The model file: header as documented, no temp file left, and it reproduces the accuracy.
    assert.deepEqual(readdirSync(run).sort(), ['model.smol', 'result.json']);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'experiments', 'cli-test', 'result.json'), 'utf8')), res, 'the experiment copy equals --output');
    const { header } = readModelHeader(save);
    const spec = header.architecture as ModelSpec;
    assert.deepEqual(spec, { type: 'mlp', inputDim: 784, hidden: 128, out: 10 });
    assert.deepEqual(header.meta, { steps: 50, seed: 3 });
    const model = createModel(spec, 99);
    loadModel(save, model, spec);
    const acc = (await evaluate(model, loadMnist().test)).accuracy;
    assert.equal(acc, res.test_accuracy, 'the saved model does not reproduce the run\'s test accuracy');
  });

  it('bad flag values exit non-zero with one line naming the flag', async () => {
    const cases: [string[], string][] = [
      [['--batch-size', '0'], '--batch-size'],
      [['--model', 'foo'], '--model'],
      [['--lr', '-1'], '--lr'],
      [['--lr', 'fast'], '--lr'],
      [['--epochs', '1.5'], '--epochs'],
      [['--hidden', '128,0'], '--hidden'],
      [['--optimizer', 'rmsprop'], '--optimizer'],
      [['--schedule', 'exponential'], '--schedule'],
      [['--min-lr', '-0.1'], '--min-lr'],
      [['--decay-steps', '0'], '--decay-steps'],
      [['--max-steps', '-3'], '--max-steps'],
      [['--backend', 'gpu'], '--backend'],
      [['--bogus'], '--bogus'],
    ];
    // --max-steps 1 keeps the run short should a bad value ever be accepted.
    const results = await Promise.all(cases.map(([args]) => runCli(['train', ...(args[0] === '--max-steps' ? [] : ['--max-steps', '1']), ...args], { cwd: dir })));
    results.forEach((r, i) => assertOneLineError(r, cases[i][1], `train ${cases[i][0].join(' ')}`));
  });

  it('a missing --data-dir exits non-zero naming the path, without a stack trace (unless --verbose)', async () => {
    const missing = join(dir, 'no-such-mnist');
    const r = await runCli(['train', '--data-dir', missing, '--max-steps', '1'], { cwd: dir });
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(missing), `error does not name ${missing}:\n${r.stderr}`);
    assert.match(r.stderr, /^smolcluster: error: .*MNIST file not found/);
    assert.ok(r.stderr.trim().split('\n').length <= 2, `more than two lines:\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    assert.ok(!existsSync(missing));

    const verbose = await runCli(['--verbose', 'train', '--data-dir', missing, '--max-steps', '1'], { cwd: dir });
    assert.notEqual(verbose.code, 0);
    assert.match(verbose.stderr, /^\s+at /m, '--verbose prints the stack');
  });
});
