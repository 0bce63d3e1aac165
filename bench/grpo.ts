/**
 * bench:grpo — a GRPO step of `smolcluster grpo` against TRL's GRPOTrainer on the same machine, in
 * the same run (issue 47 must-show 5): the wall clock per step (target: ours ≥ 2× TRL's speed, TRL's
 * seconds ÷ ours), and our rollout tokens/s against `smolcluster serve` decoding the same batch
 * (target ≥ 0.9 of serve's).
 *
 *   npm run bench:grpo [-- --shape smollm2-135m|llama-tiny] [--layers N] [--steps 3] [--warmup 1] [--generations 8]
 *                         [--batch 8] [--max-completion-length 128] [--threads 1] [--only ours,serve,trl] [--serve-repeats 3] [--timeout 1800]
 *
 * The defaults are TRL's GRPOConfig's (G 8, 8 completions a step: one prompt) but for the completions'
 * length, 128 tokens where TRL's default is 256, so that the whole run (4 steps a side, serve, loading)
 * takes minutes on one thread; `--shape llama-tiny` is a smoke run of the code path in seconds.
 *
 * One model: a Hugging Face folder of the shape (SmolLM2-135M's by default, random weights from a
 * seed, config.json + model.safetensors) and a byte-level tokenizer.json both sides read to the same
 * ids (bench/lib/grpo_inputs.ts: no BOS, no end token), written once into a temporary folder. One
 * task: the built-in addition:2 prompts, in the order our run takes them (TRL gets that list with its
 * shuffling off, and the bench checks each step's prompt lengths and the first prompt's ids agree).
 * The same G, completions a step, max completion length, temperature, loss (dapo), β, ε, lr, max
 * grad norm, fp32, full fine-tuning, threads. Every completion runs to its full length: our tokenizer
 * has no end token, and TRL is given one it may not sample before max_completion_length
 * (min_new_tokens); the mean lengths both sides log are printed.
 *
 * The sides run one after the other, never together: ours (the real CLI, `smolcluster grpo`, in a
 * child; its metrics.jsonl read back), then `smolcluster serve` (the same folder, --max-batch = the
 * completions of a step; P concurrent streamed requests, each a step's prompt with n = G choices of
 * max-completion-length tokens at the same temperature, ignore_eos: a GRPO step's rollouts as serve
 * traffic, bench/lib/serve_client.ts), then TRL (bench/reference/grpo_trl.py in the torch venv).
 * `--warmup` steps are run and left out of each side's figures. Each child has a deadline
 * (--timeout seconds; serve: its start and each request) that names the side that was late; a side
 * that fails prints its reason in its cells. Last line: one JSON object.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { findPythonWith, gitInfo, machineInfo, median, packageRoot, parseOnly, pythonCandidates, runJsonChild, threadEnv } from './lib/index.js';
import { stepPrompts, writeStandInTokenizer } from './lib/grpo_inputs.js';
import { type OurGrpoLine, type StepTimes, type TrlReport, ourStepTimes, stepSummary, trlPromptsDiffer, trlStepTimes } from './lib/grpo_report.js';
import { concurrent, startServer, stopServer } from './lib/serve_client.js';
import { loadHfTokenizer } from '../src/data/hf_tokenizer.js';
import { promptIds } from '../src/generate/reply.js';
import { saveFolder } from '../src/nn/interchange/hf_folder.js';
import { type LlamaName, type LlamaSpec, createModel, describeSpec, llamaSpec } from '../src/nn/index.js';

const PARTS = ['ours', 'serve', 'trl'] as const;
/** The shapes --shape takes, with the vocabulary each folder gets (llama-tiny: 256 bytes + 256 stand-ins). */
const SHAPES: Partial<Record<LlamaName, { vocab: number; label: string }>> = {
  'smollm2-135m': { vocab: 49152, label: 'SmolLM2-135M shape' },
  'llama-tiny': { vocab: 512, label: 'llama-tiny (a smoke run, not a figure)' },
};
const SEED = 1234;
const TASK = 'addition:2';
const TASK_SIZE = 1000;
/** Positions a prompt of the task may take (its longest is 45 bytes). */
const PROMPT_ROOM = 64;
const TARGET = { speed: 2, rolloutOverServe: 0.9 } as const;

interface Plan {
  parts: (typeof PARTS)[number][];
  shape: LlamaName;
  layers?: number;
  steps: number;
  warmup: number;
  generations: number;
  batch: number;
  maxCompletionLength: number;
  threads: number;
  temperature: number;
  lr: number;
  beta: number;
  epsilon: number;
  lossType: string;
  maxGradNorm: number;
  serveRepeats: number;
  timeoutS: number;
}

type Side<T> = T | { error: string };
const failed = <T extends object>(x: Side<T>): x is { error: string } => 'error' in x;

interface OursResult { steps: StepTimes[]; config: string }
interface ServeResult { runs: { tokens: number; wallMs: number; tokensPerSecond: number }[]; tokensPerSecond: number; requests: number; n: number }
interface TrlResult { steps: StepTimes[]; detail: string; peakRssMB: number; promptsDiffer: string | null; firstIdsEqual: boolean }

/** `message`, then the last `n` lines of a child's stderr where it wrote any. */
const withTail = (message: string, stderr: string, n = 3): string => {
  const tail = stderr.trim().split('\n').slice(-n).join(' | ').slice(0, 600);
  return tail ? `${message}: ${tail}` : message;
};

/** `smolcluster grpo` on the folder: warm-up + timed steps, its metrics.jsonl read back. */
async function runOurs(plan: Plan, cli: string, folder: string, work: string): Promise<Side<OursResult>> {
  const experiments = join(work, 'experiments');
  const args = [
    cli, 'grpo', '--model', folder, '--task', TASK, '--task-size', String(TASK_SIZE), '--held-out', '0', '--reward', 'exact-number',
    '--num-generations', String(plan.generations), '--batch-size', String(plan.batch), '--max-completion-length', String(plan.maxCompletionLength),
    '--max-steps', String(plan.warmup + plan.steps), '--threads', String(plan.threads), '--seed', String(SEED), '--temperature', String(plan.temperature),
    '--lr', String(plan.lr), '--beta', String(plan.beta), '--epsilon', String(plan.epsilon), '--loss-type', plan.lossType,
    '--max-grad-norm', String(plan.maxGradNorm), '--max-batch', String(plan.batch), '--experiments-dir', experiments, '--name', 'ours',
  ];
  console.error(`bench:grpo: ours: smolcluster grpo, ${plan.warmup + plan.steps} steps ...`);
  const r = await runJsonChild(process.execPath, args, { env: threadEnv(plan.threads), timeoutMs: plan.timeoutS * 1000, stderr: 'pipe' });
  if (r.timedOut) return { error: withTail(`smolcluster grpo did not finish ${plan.warmup + plan.steps} steps within --timeout ${plan.timeoutS} s`, r.stderr, 1) };
  if (r.code !== 0) return { error: withTail(`smolcluster grpo exited with ${r.signal ?? r.code}`, r.stderr) };
  const file = join(experiments, 'ours', 'metrics.jsonl');
  if (!existsSync(file)) return { error: `smolcluster grpo wrote no ${file}` };
  const lines = readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as OurGrpoLine);
  const steps = ourStepTimes(lines, plan.warmup);
  if (steps.length !== plan.steps) return { error: `metrics.jsonl holds ${steps.length} timed steps, not ${plan.steps}` };
  return { steps, config: join(experiments, 'ours', 'config.json') };
}

/** `smolcluster serve` on the folder: P concurrent requests of n = G choices each, as a step's rollouts. */
async function runServe(plan: Plan, cli: string, folder: string, tokenizer: string, prompts: number[][]): Promise<Side<ServeResult>> {
  console.error(`bench:grpo: serve: ${prompts.length} request${prompts.length === 1 ? '' : 's'} × n ${plan.generations}, ${plan.maxCompletionLength} tokens, ${plan.serveRepeats} runs after a warm-up ...`);
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  try {
    server = await startServer({ cli, folder, tokenizer, maxBatch: plan.batch, precision: 'fp32', threads: plan.threads });
    const o = { n: plan.generations, temperature: plan.temperature };
    await concurrent(server.url, prompts, prompts.length, 4, { ...o, seed: SEED });
    const runs: ServeResult['runs'] = [];
    for (let r = 0; r < plan.serveRepeats; r++) {
      const run = await concurrent(server.url, prompts, prompts.length, plan.maxCompletionLength, { ...o, seed: SEED + 1 + r });
      runs.push({ tokens: run.tokens, wallMs: run.wallMs, tokensPerSecond: run.tokensPerSecond });
    }
    return { runs, tokensPerSecond: median(runs.map((r) => r.tokensPerSecond)), requests: prompts.length, n: plan.generations };
  } catch (e) {
    const why = e instanceof Error ? (e.name === 'TimeoutError' ? 'a request to smolcluster serve passed its 10-minute deadline' : e.message) : String(e);
    return { error: `serve: ${why}` };
  } finally {
    if (server) await stopServer(server.child);
  }
}

/** TRL's GRPOTrainer (bench/reference/grpo_trl.py) on the folder and the same prompts in our order. */
async function runTrl(plan: Plan, folder: string, tokenizer: string, work: string, rows: { prompt: string; answer: number }[], ourIds: number[][]): Promise<Side<TrlResult>> {
  const py = findPythonWith('trl', [...pythonCandidates(), '/opt/torchvenv/bin/python']);
  if (!py.found) return { error: `skipped: ${py.reason}` };
  const prompts = join(work, 'prompts.json');
  writeFileSync(prompts, JSON.stringify(rows));
  const script = join(packageRoot(import.meta.url), 'bench', 'reference', 'grpo_trl.py');
  const vocab = SHAPES[plan.shape]!.vocab;
  const args = [
    script, '--model', folder, '--tokenizer', tokenizer, '--prompts', prompts, '--eos-id', String(vocab - 1),
    '--generations', String(plan.generations), '--batch', String(plan.batch), '--max-completion-length', String(plan.maxCompletionLength),
    '--steps', String(plan.warmup + plan.steps), '--warmup', String(plan.warmup), '--temperature', String(plan.temperature), '--lr', String(plan.lr),
    '--beta', String(plan.beta), '--epsilon', String(plan.epsilon), '--loss-type', plan.lossType, '--max-grad-norm', String(plan.maxGradNorm),
    '--threads', String(plan.threads), '--seed', String(SEED), '--output-dir', join(work, 'trl-output'),
  ];
  console.error(`bench:grpo: TRL: GRPOTrainer (${py.found.python}, trl ${py.found.version}), ${plan.warmup + plan.steps} steps ...`);
  const r = await runJsonChild<TrlReport>(py.found.python, args, { env: threadEnv(plan.threads), timeoutMs: plan.timeoutS * 1000, stderr: 'pipe' });
  if (r.timedOut) return { error: withTail(`TRL's GRPOTrainer did not finish ${plan.warmup + plan.steps} steps within --timeout ${plan.timeoutS} s`, r.stderr, 1) };
  if (!r.value || r.error) return { error: withTail(`grpo_trl.py failed: ${r.error ?? 'no report'}`, r.stderr) };
  const report = r.value;
  const perStep = plan.batch / plan.generations;
  const lengths = Array.from({ length: plan.warmup + plan.steps }, (_, s) => ourIds.slice(s * perStep, (s + 1) * perStep).map((ids) => ids.length));
  const steps = trlStepTimes(report, plan.warmup);
  if (steps.length !== plan.steps) return { error: `grpo_trl.py timed ${steps.length} steps after the warm-up, not ${plan.steps}` };
  const first = ourIds[0];
  return {
    steps, detail: report.detail, peakRssMB: report.peakRssMB, promptsDiffer: trlPromptsDiffer(report, lengths, plan.generations),
    firstIdsEqual: report.firstPromptIds.length === first.length && report.firstPromptIds.every((id, i) => id === first[i]),
  };
}

async function main(plan: Plan): Promise<void> {
  const root = packageRoot(import.meta.url);
  const cli = join(root, 'dist', 'src', 'cli', 'main.js');
  const machine = machineInfo();
  const git = gitInfo(root);
  const { vocab, label } = SHAPES[plan.shape]!;
  const spec: LlamaSpec = llamaSpec(plan.shape, vocab, PROMPT_ROOM + plan.maxCompletionLength, plan.layers !== undefined ? { layers: plan.layers } : {});
  const work = mkdtempSync(join(tmpdir(), 'smolcluster-bench-grpo-'));
  const perStep = plan.batch / plan.generations;
  let ours: Side<OursResult> = { error: 'not run (--only)' };
  let serve: Side<ServeResult> = { error: 'not run (--only)' };
  let trl: Side<TrlResult> = { error: 'not run (--only)' };
  try {
    const folder = join(work, 'model');
    saveFolder(folder, createModel(spec, SEED), spec);
    const tokenizerPath = writeStandInTokenizer(folder, vocab);
    const tokenizer = loadHfTokenizer(tokenizerPath);
    const rows = stepPrompts(TASK, TASK_SIZE, SEED, plan.warmup + plan.steps, perStep);
    const ids = rows.map((r) => promptIds(tokenizer, r.prompt));
    if (plan.parts.includes('ours')) ours = await runOurs(plan, cli, folder, work);
    // The first timed step's prompts, as serve traffic.
    if (plan.parts.includes('serve')) serve = await runServe(plan, cli, folder, tokenizerPath, ids.slice(plan.warmup * perStep, (plan.warmup + 1) * perStep));
    if (plan.parts.includes('trl')) trl = await runTrl(plan, folder, tokenizerPath, work, rows, ids);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  report(plan, spec, label, { ours, serve, trl }, machine, git, loadavg()[0]);
}

function report(plan: Plan, spec: LlamaSpec, label: string, sides: { ours: Side<OursResult>; serve: Side<ServeResult>; trl: Side<TrlResult> }, machine: ReturnType<typeof machineInfo>, git: ReturnType<typeof gitInfo>, loadEnd: number): void {
  const { ours, serve, trl } = sides;
  const o = failed(ours) ? null : stepSummary(ours.steps);
  const t = failed(trl) ? null : stepSummary(trl.steps);
  const s = (x: number): string => `${x.toFixed(2)} s`;
  const cell = <T extends object>(side: Side<T>, f: () => string): string => (failed(side) ? side.error : f());
  const perStep = plan.batch / plan.generations;
  console.log(`\nbench:grpo — a GRPO step, smolcluster grpo vs TRL's GRPOTrainer, on ${machine.cpu} (${machine.cores} cores), ${plan.threads} thread(s) each, one side after the other; load average ${machine.loadAvg1} at the start, ${loadEnd.toFixed(2)} at the end`);
  console.log(`${label}: ${describeSpec(spec)}, random weights, fp32, full fine-tuning. Task ${TASK}; G ${plan.generations}, ${plan.batch} completions a step (${perStep} prompt${perStep === 1 ? '' : 's'}), ${plan.maxCompletionLength} tokens each, temperature ${plan.temperature}, loss ${plan.lossType}, β ${plan.beta}, ε ${plan.epsilon}, lr ${plan.lr}, max grad norm ${plan.maxGradNorm}; ${plan.warmup} warm-up step(s), then ${plan.steps} timed.`);
  console.log('');
  console.log(`| per step (median of the timed steps) | smolcluster grpo${git ? ` (${git.commit}${git.dirty ? ', local changes' : ''})` : ''} | TRL GRPOTrainer${failed(trl) ? '' : ` (${trl.detail})`} |`);
  console.log('|---|---|---|');
  const row = (name: string, f: (x: NonNullable<typeof o>, side: 'ours' | 'trl') => string): void => {
      console.log(`| ${name} | ${o ? f(o, 'ours') : cell(ours, () => '')} | ${t ? f(t, 'trl') : cell(trl, () => '')} |`);
  };
  row(`wall clock, median (min–max of ${plan.steps})`, (x) => `**${s(x.seconds.median)}** (${x.seconds.min.toFixed(2)}–${x.seconds.max.toFixed(2)})`);
  row('process CPU time (every thread)', (x) => s(x.cpuSeconds));
  row('sampling the completions', (x) => s(x.rollout));
  row('training: loss forward, backward, clipping, AdamW', (x, side) => `${s(x.train)}${side === 'trl' ? ' (the step less the two timed parts)' : ''}`);
  row('the rest: rewards, padding, advantages, bookkeeping', (x, side) => `${s(x.rest)}${side === 'ours' ? ' (the step less the two timed parts)' : ' (its reward functions)'}`);
  row('rollout tokens/s', (x) => x.rolloutTokensPerSec.toFixed(1));
  row('mean completion length (tokens)', (x) => x.meanLength.toFixed(1));
  const speed = o && t ? t.seconds.median / o.seconds.median : null;
  const cpuSpeed = o && t ? t.cpuSeconds / o.cpuSeconds : null;
  const rollout = o && !failed(serve) ? o.rolloutTokensPerSec / serve.tokensPerSecond : null;
  const verdict = (x: number | null, target: number): string => (x === null ? 'no figure' : x >= target ? 'met' : 'MISSED');
  console.log('');
  console.log(`| target | figure | |`);
  console.log('|---|---|---|');
  console.log(`| speed: TRL's seconds a step ÷ ours, ≥ ${TARGET.speed}× | ${speed === null ? `${failed(ours) ? `ours: ${ours.error}` : ''} ${failed(trl) ? `TRL: ${trl.error}` : ''}`.trim() : `${speed.toFixed(2)}×`} | ${verdict(speed, TARGET.speed)} |`);
  if (cpuSpeed !== null) console.log(`| (a reading, not the target) the same on CPU seconds a step, which other work on the machine inflates less | ${cpuSpeed.toFixed(2)}× | |`);
  const serveCell = failed(serve) ? serve.error : `serve: ${serve.tokensPerSecond.toFixed(1)} tokens/s (median of ${serve.runs.length}: ${serve.runs.map((r) => r.tokensPerSecond.toFixed(1)).join(', ')}), ${serve.requests} concurrent request${serve.requests === 1 ? '' : 's'} × n ${serve.n}`;
  console.log(`| rollout tokens/s ÷ serve's at the same batch (${plan.batch} sequences, ${plan.maxCompletionLength} tokens, T ${plan.temperature}), ≥ ${TARGET.rolloutOverServe} | ${rollout === null ? (failed(ours) ? `ours: ${ours.error}` : serveCell) : `${rollout.toFixed(2)} (${serveCell})`} | ${verdict(rollout, TARGET.rolloutOverServe)} |`);
  const promptCheck = failed(trl) ? 'TRL did not run' : `${trl.promptsDiffer ?? 'every step\'s prompt lengths equal'}; the first prompt's ids ${trl.firstIdsEqual ? 'equal' : 'DIFFER'}`;
  const lengths = `mean completion length ours ${o ? o.meanLength.toFixed(1) : '–'}, TRL ${t ? t.meanLength.toFixed(1) : '–'} of ${plan.maxCompletionLength}`;
  console.log(`\nEqual on both sides: the model folder (weights, config, tokenizer.json), the prompts of each step (checked: ${promptCheck}), G, completions a step, max completion length (${lengths}), temperature (top-p, top-k off), loss type, β, ε, lr (constant), max grad norm, AdamW, fp32, no activation recomputation (TRL's gradient_checkpointing and bf16 defaults turned off), ${plan.threads} compute thread(s).`);
  console.log('Not equal: the sampled tokens (each side its own random streams); the reward (our exact-number in JavaScript, a Python port on TRL\'s side); TRL has an end token it may not sample (min_new_tokens), ours none; TRL left-pads a step\'s prompts to one length and generates every completion from its own prefill (transformers\' generate), ours shares each prompt\'s prefill among its G completions and runs rows of one prompt length together; in the loss\'s forward and backward TRL runs every row whole, ours each prompt\'s positions once for its G completions (the same log-probabilities and gradients within 1e-5).');
  console.log(JSON.stringify({
    bench: 'grpo', plan, spec: describeSpec(spec), machine, loadAvgEnd: loadEnd, git,
    targets: TARGET, speedRatio: speed, cpuSpeedRatio: cpuSpeed, speedMet: speed === null ? null : speed >= TARGET.speed, rolloutOverServe: rollout, rolloutMet: rollout === null ? null : rollout >= TARGET.rolloutOverServe,
    ours: failed(ours) ? ours : { summary: o, steps: ours.steps },
    trl: failed(trl) ? trl : { summary: t, steps: trl.steps, detail: trl.detail, peakRssMB: trl.peakRssMB, promptsDiffer: trl.promptsDiffer, firstIdsEqual: trl.firstIdsEqual },
    serve,
  }));
}

const { values } = parseArgs({
  options: {
    only: { type: 'string' }, shape: { type: 'string' }, layers: { type: 'string' }, steps: { type: 'string' }, warmup: { type: 'string' },
    generations: { type: 'string' }, batch: { type: 'string' }, 'max-completion-length': { type: 'string' }, threads: { type: 'string' },
    'serve-repeats': { type: 'string' }, timeout: { type: 'string' },
  },
});
const positiveInt = (flag: string, v: string | undefined, dflt: number): number => {
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`bench:grpo: --${flag} must be a positive integer, got ${v}`);
  return n;
};
const shape = (values.shape ?? 'smollm2-135m') as LlamaName;
if (!(shape in SHAPES)) throw new Error(`bench:grpo: --shape ${values.shape}: one of ${Object.keys(SHAPES).join(', ')}`);
const plan: Plan = {
  parts: parseOnly(values.only, PARTS), shape, ...(values.layers !== undefined ? { layers: positiveInt('layers', values.layers, 1) } : {}),
  steps: positiveInt('steps', values.steps, 3), warmup: positiveInt('warmup', values.warmup, 1), generations: positiveInt('generations', values.generations, 8),
  batch: positiveInt('batch', values.batch, 8), maxCompletionLength: positiveInt('max-completion-length', values['max-completion-length'], 128),
  threads: positiveInt('threads', values.threads, 1), temperature: 1, lr: 1e-6, beta: 0, epsilon: 0.2, lossType: 'dapo', maxGradNorm: 1,
  serveRepeats: positiveInt('serve-repeats', values['serve-repeats'], 3), timeoutS: positiveInt('timeout', values.timeout, 1800),
};
if (plan.batch % plan.generations !== 0) throw new Error(`bench:grpo: --batch ${plan.batch} is not a multiple of --generations ${plan.generations}`);
await main(plan);
