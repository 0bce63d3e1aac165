import { join } from 'node:path';
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
    maxRows: f.maxBatch, precision: f.precision, seed: f.seed, save: f.save,
    onStep: (step, steps, r) => process.stderr.write(`${stepLine(step, steps, r)}\n`),
    onEval: (step, r) => process.stderr.write(`grpo held-out after ${step} steps: reward ${fixed(r.reward)} over ${r.prompts} prompts (${Object.entries(r.rewards).map(([name, v]) => `${name} ${fixed(v)}`).join(', ')})\n`),
    warn: (message) => process.stderr.write(`smolcluster: ${message}\n`),
  };
}

function fixed(v: number | null | undefined, digits = 3): string {
  return v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits);
}

/** "step 3/20: reward 0.375 ± 0.48, loss 0.0123, kl –, length 41.2, 96 rollout tok/s, 310 train tok/s" */
function stepLine(step: number, steps: number, r: GrpoStepRecord): string {
  return `grpo step ${step + 1}/${steps}: reward ${fixed(r.reward)} ± ${fixed(r.reward_std, 2)}, loss ${fixed(r.loss, 4)}, kl ${fixed(r.kl, 4)}, ` +
    `completion length ${fixed(r.completions.mean_length, 1)}, ${Math.round(r.rollout_tokens_per_sec)} rollout tok/s, ${Math.round(r.train_tokens_per_sec)} train tok/s`;
}
