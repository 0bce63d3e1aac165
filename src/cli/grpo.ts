import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { resolveToken, TOKEN_ENV } from '../comm/token.js';
import { parseAddress } from '../comm/tcp/mesh.js';
import type { RolloutWorkersConfig } from '../rl/remote/sampler.js';
import { Command } from 'commander';
import { GRPO_OPTIONS, type OptionValues } from '../config/options/index.js';
import { type GrpoRunOptions, runGrpo } from '../rl/grpo_run.js';
import type { GrpoStepRecord } from '../rl/grpo_step.js';
import { backend } from '../tensor/dispatch.js';
import { ConfigError } from '../util/errors.js';
import { addOptions } from './option_table.js';

type GrpoFlags = OptionValues<typeof GRPO_OPTIONS>;

/**
 * `smolcluster grpo --model SRC --data-file prompts.jsonl --reward exact-number ...`: GRPO on the
 * prompts with verifiable rewards (docs/RL.md), in this process. Each step's figures are a line of
 * `<experiments-dir>/<name>/metrics.jsonl` and a line on stderr.
 */
export function grpoCommand(): Command {
  const cmd = new Command('grpo').description('reinforcement learning with verifiable rewards (GRPO, TRL\'s settings): sample, reward, update (docs/RL.md)');
  return addOptions(cmd, GRPO_OPTIONS).action(async (f: GrpoFlags) => {
    if (f.model === undefined) throw new ConfigError('command line', '--model', 'grpo needs --model SRC (a Hugging Face model folder or a GGUF file)');
    if (f.threads !== undefined) backend().setThreads(f.threads);
    if (f.resume === 'auto' && f.name === undefined && f.checkpointDir === undefined) throw new ConfigError('command line', '--resume', 'auto continues the run --name names (or the checkpoints in --checkpoint-dir): give --name');
    const name = f.name ?? `grpo-${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
    const result = await runGrpo({ ...optionsOf(f), runDir: join(f.experimentsDir, name) });
    const saved = result.saved.length > 0 ? `; saved ${f.save}` : '';
    const [first, last] = [result.evals[0], result.evals.at(-1)];
    const heldOut = first && last ? `, held-out reward ${fixed(first.record.reward)} → ${fixed(last.record.reward)}` : '';
    process.stdout.write(`grpo: ${result.steps} steps, last reward ${fixed(result.last?.reward)}${heldOut}${saved}; metrics in ${join(f.experimentsDir, name, 'metrics.jsonl')}\n`);
  });
}

function optionsOf(f: GrpoFlags): Omit<GrpoRunOptions, 'runDir'> {
  return {
    model: f.model!, tokenizer: f.tokenizer, dataFile: f.dataFile, promptField: f.promptField, answerField: f.answerField,
    ...(f.task !== undefined ? { task: { name: f.task, size: f.taskSize, heldOut: f.heldOut } } : {}), evalFile: f.evalFile, evalEvery: f.evalEvery,
    rewards: f.reward ?? [], rewardWeights: f.rewardWeights, rewardTimeoutMs: f.rewardTimeout * 1000,
    generations: f.numGenerations, maxCompletionLength: f.maxCompletionLength, batchSize: f.batchSize, maxSteps: f.maxSteps,
    temperature: f.temperature, topP: f.topP, topK: f.topK, lr: f.lr, weightDecay: f.weightDecay, maxGradNorm: f.maxGradNorm,
    beta: f.beta, epsilon: f.epsilon, epsilonHigh: f.epsilonHigh, lossType: f.lossType, scaleRewards: f.scaleRewards, iterations: f.numIterations,
    lora: { loraRank: f.loraRank, loraAlpha: f.loraAlpha, loraDropout: f.loraDropout, loraTargets: f.loraTargets, loraBaseDtype: f.loraBaseDtype },
    maxRows: f.maxBatch, precision: f.precision, seed: f.seed, save: f.save, rollout: rolloutWorkers(f),
    maxStaleness: f.maxStaleness, importanceSamplingCap: f.importanceSamplingCap, importanceSamplingMin: f.importanceSamplingMin, importanceSamplingMode: f.importanceSamplingMode,
    checkpoints: { every: f.checkpointEvery, dir: f.checkpointDir, keep: f.keepCheckpoints, resume: f.resume },
    onStep: (step, steps, r) => process.stderr.write(`${stepLine(step, steps, r)}\n`),
    onEval: (step, r) => process.stderr.write(`grpo held-out after ${step} steps: reward ${fixed(r.reward)} over ${r.prompts} prompts (${Object.entries(r.rewards).map(([name, v]) => `${name} ${fixed(v)}`).join(', ')})\n`),
    warn: (message) => process.stderr.write(`smolcluster: ${message}\n`),
  };
}

/**
 * --rollout-workers N: N `smolcluster rollout-worker` processes started here on 127.0.0.1, each with
 * this run's --model, LoRA shape, seed and --threads (default: SMOLCLUSTER_THREADS, else the cores
 * divided among the workers as `eval --workers` divides them: N workers do not each start a pool of
 * every core), and a fresh cluster token in its environment; with --rollout-listen the workers are started by hand and dial in with SMOLCLUSTER_TOKEN.
 */
function rolloutWorkers(f: GrpoFlags): RolloutWorkersConfig | undefined {
  if (f.rolloutWorkers === 0) {
    if (f.maxStaleness > 0) throw new ConfigError('command line', '--max-staleness', 'asynchronous rollouts need --rollout-workers N');
    if (f.rolloutListen !== undefined) throw new ConfigError('command line', '--rollout-listen', 'needs --rollout-workers N: how many workers to wait for');
    return undefined;
  }
  const byHand = f.rolloutListen !== undefined;
  const { host, port } = byHand ? parseAddress(f.rolloutListen!) : { host: '127.0.0.1', port: 0 };
  const token = resolveToken({ generate: !byHand });
  const ms = f.rolloutTimeout * 1000;
  const flags = [
    '--model', f.model!, ...(f.tokenizer ? ['--tokenizer', f.tokenizer] : []), '--seed', String(f.seed), '--max-batch', String(f.maxBatch),
    ...(f.precision ? ['--precision', f.precision] : []), ...workerThreads(f),
    ...(f.loraRank !== undefined ? ['--lora-rank', String(f.loraRank)] : []), ...(f.loraAlpha !== undefined ? ['--lora-alpha', String(f.loraAlpha)] : []),
    ...(f.loraDropout !== undefined ? ['--lora-dropout', String(f.loraDropout)] : []), ...(f.loraTargets ? ['--lora-targets', f.loraTargets.join(',')] : []),
    ...(f.loraBaseDtype ? ['--lora-base-dtype', f.loraBaseDtype] : []),
  ];
  const start = (address: string): ReturnType<typeof spawn> => spawn(process.execPath, [...process.execArgv, process.argv[1], 'rollout-worker', '--connect', address, ...flags], {
    env: { ...process.env, [TOKEN_ENV]: token }, stdio: ['ignore', 'inherit', 'inherit'],
  });
  return { workers: f.rolloutWorkers, host, port, token, startMs: ms, requestMs: ms, spawn: byHand ? undefined : start };
}

/** --threads as given, else SMOLCLUSTER_THREADS (inherited), else the cores divided among the workers. */
function workerThreads(f: GrpoFlags): string[] {
  if (f.threads !== undefined) return ['--threads', String(f.threads)];
  return process.env.SMOLCLUSTER_THREADS ? [] : ['--threads', String(Math.max(1, Math.floor(availableParallelism() / f.rolloutWorkers)))];
}

function fixed(v: number | null | undefined, digits = 3): string {
  return v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits);
}

/** "step 3/20: reward 0.375 ± 0.48, loss 0.0123, kl –, length 41.2, 96 rollout tok/s, 310 train tok/s" */
function stepLine(step: number, steps: number, r: GrpoStepRecord): string {
  return `grpo step ${step + 1}/${steps}: reward ${fixed(r.reward)} ± ${fixed(r.reward_std, 2)}, loss ${fixed(r.loss, 4)}, kl ${fixed(r.kl, 4)}, ` +
    `completion length ${fixed(r.completions.mean_length, 1)}, ${Math.round(r.rollout_tokens_per_sec)} rollout tok/s, ${Math.round(r.train_tokens_per_sec)} train tok/s` +
    (r.rollout_workers > 0 ? `, ${r.rollout_workers} rollout workers, staleness ${r.staleness}` : '');
}
