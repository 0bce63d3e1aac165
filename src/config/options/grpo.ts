/**
 * `smolcluster grpo`: reinforcement learning with verifiable rewards (docs/RL.md). The names and
 * defaults are TRL's GRPOConfig's where it has them (num_generations, max_completion_length,
 * temperature, learning_rate 1e-6, beta 0, epsilon 0.2, epsilon_high, loss_type dapo, scale_rewards
 * group, num_iterations 1, max_grad_norm 1.0, per_device_train_batch_size 8 completions a step).
 */
import { InvalidArgumentError } from 'commander';
import { GENERATION_PRECISIONS } from './generation.js';
import { LORA_OPTIONS } from './lora.js';
import { appended, nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber } from './parsers.js';
import { choice, valued } from './spec.js';

/** Comma-separated numbers (--reward-weights 1,0.1). */
function numberList(value: string): number[] {
  const values = value.split(',').map((v) => Number(v.trim()));
  if (values.length === 0 || values.some((v) => !Number.isFinite(v))) throw new InvalidArgumentError('expected numbers separated by commas, e.g. 1,0.1');
  return values;
}

const { loraRank, loraAlpha, loraDropout, loraTargets, loraBaseDtype } = LORA_OPTIONS;

/** rl/grpo_loss.ts's LOSS_TYPES and rl/advantages.ts's SCALE_REWARDS (options sit below rl/; a test keeps them equal). */
export const GRPO_LOSS_TYPES = ['grpo', 'bnpo', 'dr_grpo', 'dapo'] as const;
export const GRPO_SCALE_REWARDS = ['group', 'batch', 'none'] as const;
/** rl/tasks/task_data.ts's TASK_SPLITS (the same test keeps them equal). */
export const GRPO_TASK_SPLITS = ['train', 'held-out'] as const;
/** rl/importance.ts's IMPORTANCE_SAMPLING_MODES (the same test keeps them equal). */
export const GRPO_IMPORTANCE_SAMPLING_MODES = ['token_truncate', 'token_mask', 'sequence_truncate', 'sequence_mask'] as const;

export const GRPO_OPTIONS = {
  model: valued<string>({ arg: '<src>', help: 'the policy to train: a Hugging Face model folder, or a GGUF file (with --lora-rank: LoRA over its quantized base)', forward: false }),
  tokenizer: valued<string>({ arg: '<name|path>', help: 'the tokenizer (default: the model folder\'s, or the GGUF file\'s)', forward: false }),
  dataFile: valued<string>({ arg: '<file.jsonl>', help: 'the prompts: one JSON object a line, its "prompt" a text or a list of chat messages; every field reaches the rewards', forward: false }),
  task: valued<string>({ arg: '<name>', help: 'a built-in verifiable task instead of --data-file: addition[:DIGITS] (sums of numbers of up to DIGITS digits, default 2; the answer after ####), generated from --seed with a held-out split', forward: false }),
  taskSize: valued({ arg: '<n>', help: '--task: training problems', parse: positiveInt, default: 1000, forward: false }),
  heldOut: valued({ arg: '<n>', help: '--task: held-out problems, none of them trained on', parse: nonNegativeInt, default: 100, forward: false }),
  evalFile: valued<string>({ arg: '<file.jsonl>', help: 'held-out prompts (as --data-file) whose greedy completions the rewards score before the first step, every --eval-every steps and after the last (default: --task\'s held-out split)', forward: false }),
  evalEvery: valued({ arg: '<steps>', help: 'steps between held-out evaluations (0: before the first step and after the last only)', parse: nonNegativeInt, default: 0, forward: false }),
  promptField: valued({ arg: '<name>', help: 'the field holding each prompt', default: 'prompt', forward: false }),
  answerField: valued({ arg: '<name>', help: 'the field exact-number checks the completion\'s final number against', default: 'answer', forward: false }),
  reward: valued({ arg: '<reward>', help: 'a reward (repeatable): exact-number (GSM8K\'s #### 42, \\boxed{42}, else the last number, equal to the answer field), format:REGEX (1 where the completion matches), or ./module.mjs exporting (prompt, completion, row) => number', parse: appended, repeatable: true, forward: false }),
  rewardWeights: valued({ arg: '<w,...>', help: 'the rewards\' weights in --reward order (TRL\'s reward_weights; default 1 each)', parse: numberList, forward: false }),
  rewardTimeout: valued({ arg: '<s>', help: 'seconds a reward may take on one completion before it is scored as failed', parse: positiveNumber, default: 10, forward: false }),
  numGenerations: valued({ arg: '<g>', help: 'G: completions sampled per prompt (TRL\'s num_generations)', parse: positiveInt, default: 8, forward: false }),
  maxCompletionLength: valued({ arg: '<n>', help: 'tokens a completion may take at most', parse: positiveInt, default: 512, forward: false }),
  batchSize: valued({ arg: '<n>', help: 'completions per step, a multiple of --num-generations (TRL\'s per_device_train_batch_size; 8 is one prompt a step at G 8)', parse: positiveInt, default: 8, forward: false }),
  maxSteps: valued({ arg: '<n>', help: 'GRPO steps (default: one pass over the prompts)', parse: positiveInt, forward: false }),
  temperature: valued({ arg: '<t>', help: 'sampling temperature', parse: positiveNumber, default: 1, forward: false }),
  topP: valued({ arg: '<p>', help: 'nucleus sampling (default 1: off)', parse: positiveNumber, forward: false }),
  topK: valued({ arg: '<k>', help: 'sample among the k most likely tokens (default 0: off)', parse: nonNegativeInt, forward: false }),
  lr: valued({ arg: '<rate>', help: 'AdamW\'s learning rate (TRL\'s learning_rate)', parse: nonNegativeNumber, default: 1e-6, forward: false }),
  weightDecay: valued({ arg: '<wd>', help: 'AdamW\'s decoupled weight decay', parse: nonNegativeNumber, default: 0, forward: false }),
  maxGradNorm: valued({ arg: '<n>', help: 'clip the gradient to this global L2 norm (0: off)', parse: nonNegativeNumber, default: 1, forward: false }),
  beta: valued({ arg: '<b>', help: 'the KL term\'s weight against a frozen reference (0: no reference loaded)', parse: nonNegativeNumber, default: 0, forward: false }),
  epsilon: valued({ arg: '<e>', help: 'the ratio\'s lower clip, 1 − ε', parse: nonNegativeNumber, default: 0.2, forward: false }),
  epsilonHigh: valued({ arg: '<e>', help: 'the ratio\'s upper clip, 1 + ε_high (default: --epsilon; DAPO uses 0.28)', parse: nonNegativeNumber, forward: false }),
  lossType: choice(GRPO_LOSS_TYPES, { arg: '<type>', help: 'how per-token terms are averaged: grpo (per sequence), bnpo, dr_grpo (by a constant length), dapo (over the batch\'s tokens; default)', parse: oneOf(GRPO_LOSS_TYPES), default: 'dapo', forward: false }),
  scaleRewards: choice(GRPO_SCALE_REWARDS, { arg: '<how>', help: 'advantages divided by the group\'s reward std (group, default), the batch\'s (batch), or not (none: Dr. GRPO)', parse: oneOf(GRPO_SCALE_REWARDS), default: 'group', forward: false }),
  numIterations: valued({ arg: '<mu>', help: 'μ: optimizer steps on each batch of completions', parse: positiveInt, default: 1, forward: false }),
  loraRank, loraAlpha, loraDropout, loraTargets, loraBaseDtype,
  maxBatch: valued({ arg: '<n>', help: 'sequences sampled together at most', parse: positiveInt, default: 32, forward: false }),
  precision: choice(GENERATION_PRECISIONS, { arg: '<name>', help: 'fp32 (default) or bf16 (matmuls and attention in bfloat16)', parse: oneOf(GENERATION_PRECISIONS), forward: false }),
  threads: valued({ arg: '<n>', help: 'compute threads', parse: positiveInt, forward: false }),
  seed: valued({ arg: '<n>', help: 'seeds the adapters\' initialisation, the prompts\' order and the sampling', parse: nonNegativeInt, default: 0, forward: false }),
  name: valued<string>({ arg: '<name>', help: 'the run\'s name: metrics go to <experiments-dir>/<name>/metrics.jsonl', forward: false }),
  experimentsDir: valued({ arg: '<dir>', help: 'where run folders are written', default: 'experiments', forward: false }),
  save: valued<string>({ arg: '<dir>', help: 'save the trained policy: the PEFT adapter folder under LoRA, else a Hugging Face model folder', forward: false }),
  rolloutWorkers: valued({ arg: '<n>', help: 'sample on N rollout worker processes (started here on 127.0.0.1, or with --rollout-listen started by hand), weights sent after each step', parse: nonNegativeInt, default: 0, forward: false }),
  rolloutListen: valued<string>({ arg: '<host:port>', help: 'wait for --rollout-workers workers started by hand (smolcluster rollout-worker --connect HOST:PORT, the same SMOLCLUSTER_TOKEN) instead of starting them', forward: false }),
  maxStaleness: valued({ arg: '<k>', help: 'with --rollout-workers: sample the next k steps\' prompts while a step trains (rollouts at most k policy versions old), corrected by importance sampling (--importance-sampling-mode)', parse: nonNegativeInt, default: 0, forward: false }),
  importanceSamplingCap: valued({ arg: '<c>', help: 'with --max-staleness: the importance ratio exp(trainer − sampler log-probability)\'s upper bound (TRL\'s vllm_importance_sampling_clip_max)', parse: positiveNumber, default: 3, forward: false }),
  importanceSamplingMin: valued({ arg: '<c>', help: 'with --max-staleness: its lower bound (TRL\'s vllm_importance_sampling_clip_min; default none)', parse: nonNegativeNumber, forward: false }),
  importanceSamplingMode: choice(GRPO_IMPORTANCE_SAMPLING_MODES, { arg: '<mode>', help: 'with --max-staleness: a ratio per token or per completion, clamped to the bounds or zeroed outside them: token_truncate (default), token_mask, sequence_truncate, sequence_mask (TRL\'s vllm_importance_sampling_mode)', parse: oneOf(GRPO_IMPORTANCE_SAMPLING_MODES), default: 'token_truncate', forward: false }),
  checkpointEvery: valued({ arg: '<steps>', help: 'save a checkpoint (what trains and AdamW\'s state) every N steps (TRL\'s save_steps; 0: never)', parse: nonNegativeInt, default: 500, forward: false }),
  checkpointDir: valued<string>({ arg: '<dir>', help: 'where checkpoints go (default: <experiments-dir>/<name>/checkpoints)', forward: false }),
  keepCheckpoints: valued({ arg: '<k>', help: 'keep the newest K checkpoints', parse: positiveInt, default: 3, forward: false }),
  resume: valued<string>({ arg: '<dir|auto>', help: 'continue from the newest good checkpoint in DIR (auto: the --name run\'s, starting fresh where it has none)', forward: false }),
  rolloutTimeout: valued({ arg: '<s>', help: 'seconds a rollout worker may take to connect, or to answer one step\'s prompts, before it is dropped', parse: positiveNumber, default: 600, forward: false }),
} as const;

/** `smolcluster rollout-worker`: a GRPO rollout worker (docs/RL.md); the model and LoRA flags must be the trainer's. */
export const ROLLOUT_WORKER_OPTIONS = {
  connect: valued<string>({ arg: '<host:port>', help: 'the GRPO trainer\'s rollout address (its --rollout-listen)', forward: false }),
  model: GRPO_OPTIONS.model, tokenizer: GRPO_OPTIONS.tokenizer,
  loraRank, loraAlpha, loraDropout, loraTargets, loraBaseDtype,
  seed: GRPO_OPTIONS.seed, maxBatch: GRPO_OPTIONS.maxBatch, precision: GRPO_OPTIONS.precision, threads: GRPO_OPTIONS.threads,
  connectTimeout: valued({ arg: '<s>', help: 'seconds to keep dialing a trainer that is not up yet', parse: positiveNumber, default: 120, forward: false }),
} as const;

/** `smolcluster task-data`: a built-in task's split as JSONL; the task, sizes and seed as `grpo --task` takes them. */
export const TASK_DATA_OPTIONS = {
  task: GRPO_OPTIONS.task,
  taskSize: GRPO_OPTIONS.taskSize,
  heldOut: GRPO_OPTIONS.heldOut,
  seed: valued({ arg: '<n>', help: 'the seed the problems are generated from (grpo\'s --seed)', parse: nonNegativeInt, default: 0, forward: false }),
  split: choice(GRPO_TASK_SPLITS, { arg: '<split>', help: 'train (the problems grpo --task trains on, never a held-out one) or held-out (the ones it evaluates on)', parse: oneOf(GRPO_TASK_SPLITS), default: 'train', forward: false }),
  out: valued<string>({ arg: '<file.jsonl>', help: 'where to write the rows: {"prompt", "completion", "answer"} a line', forward: false }),
} as const;
