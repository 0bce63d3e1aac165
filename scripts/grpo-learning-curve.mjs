#!/usr/bin/env node
/**
 * GRPO's learning curve on the built-in addition task (issue 47, must-show 4; docs/RL.md, "Learning
 * curve"), end to end with the CLI:
 *
 *   1. `smolcluster task-data` writes the first --sft-problems problems of the task's training split
 *      (never a held-out one) as prompt/completion JSONL;
 *   2. `smolcluster train` trains a small Llama-shape model from random weights on them, byte
 *      tokenizer, AdamW with 100 warm-up steps (a quarter of a shorter run) then a cosine decay, and
 *      saves a Hugging Face folder: a model with partial held-out accuracy;
 *   3. `smolcluster grpo --task addition:D` trains that folder (full fine-tuning) with the
 *      exact-number reward on the task's --task-size training problems, a KL term (--beta) against
 *      the folder itself, rollouts on --rollout-workers processes, scoring the held-out split
 *      greedily before the first step and every --eval-every steps; it is stopped at --minutes of
 *      wall clock if it has not finished;
 *   4. prints the held-out accuracy before GRPO and at each evaluation with the minutes since grpo
 *      started, and the rise in points; last, one JSON line of the figures.
 *
 * It exits 1 when the held-out accuracy did not rise by --expect-rise points (default 20) within
 * --minutes (default 30). Everything goes under --out: the data, the two models, the runs'
 * folders (`smolcluster dashboard OUT/experiments/grpo` shows the GRPO run's charts) and the logs.
 *
 *   node scripts/grpo-learning-curve.mjs --out DIR [--digits 2] [--sft-problems 350] [--sft-steps 800]
 *     [--task-size 5000] [--held-out 200] [--seed 0] [--max-steps 400] [--eval-every 20] [--minutes 30]
 *     [--lr 1e-4] [--batch-size 256] [--num-generations 8] [--temperature 1] [--beta 0.04] [--rollout-workers 2]
 *
 * Needs the build (npm run build).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

const { values: o } = parseArgs({
  options: {
    out: { type: 'string' }, digits: { type: 'string', default: '2' }, seed: { type: 'string', default: '0' },
    'sft-problems': { type: 'string', default: '350' }, 'sft-steps': { type: 'string', default: '800' }, 'sft-lr': { type: 'string', default: '1e-3' },
    'sft-batch-size': { type: 'string', default: '32' }, layers: { type: 'string', default: '4' }, width: { type: 'string', default: '128' }, heads: { type: 'string', default: '4' },
    'task-size': { type: 'string', default: '5000' }, 'held-out': { type: 'string', default: '200' },
    'max-steps': { type: 'string', default: '400' }, 'eval-every': { type: 'string', default: '20' }, minutes: { type: 'string', default: '30' },
    lr: { type: 'string', default: '1e-4' }, 'batch-size': { type: 'string', default: '256' }, 'num-generations': { type: 'string', default: '8' },
    temperature: { type: 'string', default: '1' }, beta: { type: 'string', default: '0.04' }, 'rollout-workers': { type: 'string', default: '2' }, 'expect-rise': { type: 'string', default: '20' },
  },
});
if (!o.out) fail('--out DIR is required (the data, the models, the runs and the logs go there)');
if (!existsSync(CLI)) fail(`${CLI} is missing: run npm run build first`);
const int = (flag) => {
  const v = Number(o[flag]);
  if (!Number.isInteger(v) || v < 0) fail(`--${flag} must be a whole number, got ${o[flag]}`);
  return v;
};
const num = (flag) => {
  const v = Number(o[flag]);
  if (!Number.isFinite(v) || v <= 0) fail(`--${flag} must be a positive number, got ${o[flag]}`);
  return v;
};
const digits = int('digits');
const task = `addition:${digits}`;
// "#### " + the sum's digits (one more than the addends') + the newline that ends the answer.
const completionLength = 5 + digits + 1 + 1;
const out = resolve(o.out);
const experiments = join(out, 'experiments');
mkdirSync(out, { recursive: true });
const common = ['--task', task, '--held-out', String(int('held-out')), '--seed', String(int('seed'))];

function fail(message) {
  process.stderr.write(`grpo-learning-curve: ${message}\n`);
  process.exit(2);
}

/** Runs the CLI to the end, its output into `log` (and stderr's tail shown if it fails). */
function cli(args, log) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: out, encoding: 'utf8', maxBuffer: 1 << 28 });
  createWriteStream(join(out, log)).end(`$ smolcluster ${args.join(' ')}\n${r.stdout}${r.stderr}`);
  if (r.status !== 0) fail(`smolcluster ${args[0]} failed (exit ${r.status}); see ${join(out, log)}:\n${r.stderr.split('\n').slice(-8).join('\n')}`);
  return r.stdout;
}

const lscpu = spawnSync('lscpu', [], { encoding: 'utf8' }).stdout ?? '';
const cpu = /^Model name:\s*(.+)$/m.exec(lscpu)?.[1]?.trim() ?? 'unknown CPU';
const cores = /^CPU\(s\):\s*(\d+)$/m.exec(lscpu)?.[1] ?? '?';
const load = () => loadavg().map((v) => v.toFixed(2)).join(', ');
const started = new Date();
process.stdout.write(`grpo-learning-curve: ${started.toISOString()}, ${cpu} (${cores} CPUs), load average ${load()}\n`);

// 1. The supervised data: the first --sft-problems of the training split.
rmSync(experiments, { recursive: true, force: true });
for (const dir of ['sft-model', 'grpo-model']) rmSync(join(out, dir), { recursive: true, force: true });
process.stdout.write(cli(['task-data', ...common, '--task-size', String(int('sft-problems')), '--out', 'sft.jsonl'], 'task-data.log'));

// 2. A small Llama from random weights, trained on them.
const sftStart = Date.now();
const sft = cli(['train', '--model', 'llama-tiny', '--layers', o.layers, '--width', o.width, '--heads', o.heads, '--dataset', 'text', '--data-file', 'sft.jsonl',
  '--tokenizer', 'bytes', '--optimizer', 'adamw', '--lr', o['sft-lr'], '--warmup-steps', String(Math.min(100, Math.floor(int('sft-steps') / 4))), '--batch-size', o['sft-batch-size'], '--max-steps', String(int('sft-steps')),
  '--threads', '2', '--seed', String(int('seed')), '--experiments-dir', 'experiments', '--name', 'sft', '--save', 'sft-model'], 'train.log');
process.stdout.write(`${sft.trim().split('\n').at(-1)}\n`);
process.stdout.write(`train: ${((Date.now() - sftStart) / 60000).toFixed(1)} min\n`);

// 3. GRPO from that folder, stopped at --minutes.
const grpoArgs = ['grpo', '--model', 'sft-model', ...common, '--task-size', String(int('task-size')), '--reward', 'exact-number',
  '--max-completion-length', String(completionLength), '--num-generations', o['num-generations'], '--batch-size', o['batch-size'], '--lr', o.lr,
  '--temperature', o.temperature, '--beta', o.beta, '--max-steps', String(int('max-steps')), '--eval-every', String(int('eval-every')), '--rollout-workers', String(int('rollout-workers')),
  '--experiments-dir', 'experiments', '--name', 'grpo', '--save', 'grpo-model'];
const grpoLog = createWriteStream(join(out, 'grpo.log'));
grpoLog.write(`$ smolcluster ${grpoArgs.join(' ')}\n`);
process.stdout.write(`$ smolcluster ${grpoArgs.join(' ')}\n`);
const limitMs = num('minutes') * 60_000;
const grpoStart = Date.now();
const minutes = (t) => ((t - grpoStart) / 60000).toFixed(1);
const child = spawn(process.execPath, [CLI, ...grpoArgs], { cwd: out, stdio: ['ignore', 'pipe', 'pipe'] });
let stopped = false;
const timer = setTimeout(() => {
  stopped = true;
  process.stdout.write(`grpo-learning-curve: ${o.minutes} minutes passed; stopping grpo (pid ${child.pid})\n`);
  child.kill('SIGTERM');
}, limitMs);
let pending = '';
child.stdout.on('data', (b) => grpoLog.write(b));
child.stderr.on('data', (b) => {
  grpoLog.write(b);
  pending += b.toString('utf8');
  const lines = pending.split('\n');
  pending = lines.pop();
  for (const line of lines) if (/^grpo held-out after/.test(line)) process.stdout.write(`[${minutes(Date.now())} min, load ${load()}] ${line}\n`);
});
const code = await new Promise((res) => child.on('exit', (c, signal) => res(c ?? signal)));
clearTimeout(timer);
grpoLog.end();
if (code !== 0 && !stopped) fail(`smolcluster grpo failed (${code}); see ${join(out, 'grpo.log')}`);

// 4. The curve, from the run's metrics.jsonl.
const lines = readFileSync(join(experiments, 'grpo', 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const evals = lines.filter((l) => l.kind === 'grpo_eval');
const steps = lines.filter((l) => l.kind === 'grpo');
if (evals.length === 0) fail('the GRPO run logged no held-out evaluation');
const before = evals[0].rewards['exact-number'];
const pct = (v) => (100 * v).toFixed(1);
process.stdout.write(`\nheld-out accuracy (${evals[0].prompts} problems of ${task}, greedy), minutes since grpo started:\n`);
process.stdout.write(' step | minutes | accuracy % | rise (points)\n');
let reached = null;
for (const e of evals) {
  const acc = e.rewards['exact-number'];
  const rise = 100 * (acc - before);
  if (reached === null && rise >= num('expect-rise')) reached = e;
  process.stdout.write(`${String(e.step).padStart(5)} | ${minutes(e.time).padStart(7)} | ${pct(acc).padStart(10)} | ${(rise >= 0 ? '+' : '') + rise.toFixed(1)}\n`);
}
const last = evals.at(-1);
const best = evals.reduce((a, e) => (e.rewards['exact-number'] > a.rewards['exact-number'] ? e : a));
const wall = (Date.now() - grpoStart) / 60000;
const summary = {
  date: started.toISOString(), cpu, cpus: Number(cores), load_average_end: loadavg().map((v) => Number(v.toFixed(2))), task, held_out: evals[0].prompts,
  sft: { problems: int('sft-problems'), steps: int('sft-steps') },
  grpo: { lr: num('lr'), batch_size: int('batch-size'), num_generations: int('num-generations'), temperature: num('temperature'), beta: Number(o.beta), rollout_workers: int('rollout-workers') },
  grpo_steps: steps.length, grpo_minutes: Number(wall.toFixed(2)), stopped_at_limit: stopped,
  before: Number(pct(before)), last: Number(pct(last.rewards['exact-number'])), best: Number(pct(best.rewards['exact-number'])),
  rise_points: Number((100 * (last.rewards['exact-number'] - before)).toFixed(1)),
  reached_rise: reached ? { points: num('expect-rise'), step: reached.step, minutes: Number(minutes(reached.time)) } : null,
};
process.stdout.write(`\n${pct(before)} % → ${pct(last.rewards['exact-number'])} % after ${steps.length} steps, ${wall.toFixed(1)} min of grpo` +
  `${stopped ? ` (stopped at ${o.minutes} min)` : ''}; best ${pct(best.rewards['exact-number'])} % at step ${best.step}; ` +
  (reached ? `+${o['expect-rise']} points first reached at step ${reached.step}, ${minutes(reached.time)} min\n` : `+${o['expect-rise']} points not reached\n`));
process.stdout.write(`dashboard: smolcluster dashboard ${join(experiments, 'grpo')}\n${JSON.stringify(summary)}\n`);
process.exit(reached ? 0 : 1);
