/**
 * A GRPO run in one process (`smolcluster grpo`, docs/RL.md): the policy and its optimizer, the
 * prompts (a data file, or a built-in task's training split) in a seeded order (each pass over them
 * shuffled anew), the rewards, and --max-steps steps (grpo_step.ts), each one a line of
 * `<run>/metrics.jsonl` (kind "grpo"); with held-out prompts (the task's held-out split, or
 * --eval-file), their greedy completions scored by the same rewards before the first step, every
 * --eval-every steps and after the last (kind "grpo_eval"); the policy saved at the end (the PEFT
 * adapter folder under LoRA, else a Hugging Face folder). The rewards' worker threads are released
 * however the run ends.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RunEvents, resetEvents } from '../metrics/events.js';
import { JsonlWriter } from '../metrics/jsonl.js';
import { backend } from '../tensor/dispatch.js';
import { CONFIG_SCHEMA, CONFIG_SCHEMA_VERSION } from '../metrics/reader.js';
import { METRICS_SCHEMA, METRICS_SCHEMA_VERSION } from '../metrics/step_metrics.js';
import { snakeCaseKeys } from '../util/snake_case.js';
import { saveFolder } from '../nn/interchange/hf_folder.js';
import { saveAdapter } from '../nn/lora/peft.js';
import { ConfigError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { type GrpoModels, type GrpoSettings, type GrpoStepRecord, grpoStep, rolloutOptionsOf } from './grpo_step.js';
import type { ImportanceSamplingMode } from './importance.js';
import { RolloutsAhead } from './remote/ahead.js';
import { type Policy, type PolicyConfig, loadPolicy, loadReference, policyOptimizer } from './policy.js';
import { type HeldOutRecord, scoreHeldOut } from './held_out.js';
import { type PromptRow, promptOf, readPrompts } from './prompts.js';
import type { RolloutOptions } from './rollouts.js';
import { namedRewards } from './rewards/named.js';
import type { RolloutPool } from './remote/pool.js';
import { type RolloutWorkersConfig, openRolloutPool, sampleRemote, syncRolloutPool } from './remote/sampler.js';
import { type TaskRow, additionDigits, additionTask } from './tasks/addition.js';
import { type GrpoCheckpointOptions, grpoCheckpointer, grpoRunIdentity, keepMetricsBefore } from './grpo_checkpoints.js';

/** The step's settings; importance sampling comes from the flat options below (maxStaleness > 0 turns it on). */
export interface GrpoRunOptions extends Omit<GrpoSettings, 'importanceSampling'> {
  model: string;
  tokenizer?: string;
  /** The prompts: a JSONL file, or `task` (a built-in one). */
  dataFile?: string;
  /** A built-in task (tasks/addition.ts): `addition[:DIGITS]`, its training and held-out splits from the seed. */
  task?: { name: string; size: number; heldOut: number };
  /** Held-out prompts (JSONL) scored greedily (default: the task's held-out split, if any). */
  evalFile?: string;
  /** Steps between held-out evaluations (0: only before the first step and after the last). */
  evalEvery?: number;
  promptField: string;
  answerField: string;
  rewards: readonly string[];
  rewardWeights?: readonly number[];
  /** Completions per step, a multiple of `generations`. */
  batchSize: number;
  /** Default: one pass over the prompts. */
  maxSteps?: number;
  lr: number;
  weightDecay: number;
  seed: number;
  lora: Omit<PolicyConfig, 'seed'>;
  /** The run's folder (config.json, metrics.jsonl). */
  runDir: string;
  save?: string;
  /** Rollouts on worker processes (`--rollout-workers`); absent: sampled in this process. */
  rollout?: RolloutWorkersConfig;
  /** K > 0 (with rollout workers): step k+1 … k+K's rollouts are sampled while step k trains, corrected by importance sampling (importance.ts). Default 0: synchronous. */
  maxStaleness?: number;
  /** The importance-sampling ratio's upper bound (TRL's vllm_importance_sampling_clip_max, default 3). */
  importanceSamplingCap?: number;
  /** Its lower bound (TRL's vllm_importance_sampling_clip_min; default none). */
  importanceSamplingMin?: number;
  /** How the ratios are taken and bounded (TRL's vllm_importance_sampling_mode; default token_truncate, importance.ts). */
  importanceSamplingMode?: ImportanceSamplingMode;
  /** Checkpoints every N steps, and resuming from them (grpo_checkpoints.ts). */
  checkpoints?: GrpoCheckpointOptions;
  /** Told of each step as it ends. */
  onStep?: (step: number, steps: number, record: GrpoStepRecord) => void;
  /** Told of each held-out evaluation (after `step` steps). */
  onEval?: (step: number, record: HeldOutRecord) => void;
  warn?: (message: string) => void;
}

export interface GrpoRunResult {
  steps: number;
  last: GrpoStepRecord | null;
  /** The held-out evaluations: before the first step, at --eval-every, after the last. */
  evals: { step: number; record: HeldOutRecord }[];
  /** The files --save wrote. */
  saved: string[];
}

/** metrics.jsonl's schema, as train's lines carry it: readers (the dashboard) take the grpo kinds beside train's. */
const METRICS_HEAD = { schema: METRICS_SCHEMA, schema_version: METRICS_SCHEMA_VERSION } as const;

export async function runGrpo(o: GrpoRunOptions): Promise<GrpoRunResult> {
  if (o.batchSize % o.generations !== 0) throw new ConfigError('command line', '--batch-size', `${o.batchSize} completions a step is not a multiple of --num-generations ${o.generations}: each prompt is sampled G times`);
  const policy = loadPolicy(o.model, { ...o.lora, seed: o.seed }, o.tokenizer);
  const { prompts, heldOut } = promptSets(o, policy);
  checkRoom([...prompts, ...heldOut], o, policy);
  const perStep = o.batchSize / o.generations;
  const steps = o.maxSteps ?? Math.ceil(prompts.length / perStep);
  const optimizer = policyOptimizer(policy.model, o.lr, o.weightDecay);
  // What trains and how it was built: a checkpoint of another model or fine-tuning method is refused.
  const architecture = { grpo: policy.spec, fine_tune: policy.fineTune };
  const saving = grpoCheckpointer(o.checkpoints, o.runDir, grpoRunIdentity(o as unknown as Record<string, unknown>), o.warn ?? (() => {}));
  const checkpointer = saving?.checkpointer;
  const restored = checkpointer?.restore(policy.model, architecture, optimizer, steps) ?? null;
  const start = restored?.position.step ?? 0;
  const earlierEvals = restored ? keepMetricsBefore(o.runDir, start) : [];
  if (restored) o.warn?.(`grpo: resumed from step ${start} (${restored.file})`);
  const rewards = await namedRewards(o.rewards, o.rewardWeights, { answerField: o.answerField, timeoutMs: o.rewardTimeoutMs });
  const writer = startRun(o, policy, restored !== null);
  // events.jsonl: the run's start, its one process joining and its end, as a training run's (the dashboard reads them).
  const events = new RunEvents(o.runDir, 0, { workers: 1, backend: backend().description, threads: backend().getThreads(), owner: true });
  events.onStart({ device: policy.model.arena().device });
  if (restored) events.onResume(start, restored.file);
  let pool: RolloutPool | null = null;
  saving?.stop?.listen();
  try {
    pool = o.rollout ? await openRolloutPool(o.rollout, policy, o.lora, o.warn ?? (() => {})) : null;
    const reference = o.beta > 0 ? loadReference(o.model, policy.spec, o.seed) : null;
    const models: GrpoModels = {
      policy: policy.model, reference, optimizer, rewards, eosIds: policy.eosIds,
      decode: (ids: number[]) => policy.tokenizer.decode(ids), warn: o.warn, version: start,
      sample: pool ? (ids: readonly (readonly number[])[], ro: RolloutOptions) => sampleRemote(pool!, policy.model, models.version ?? 0, ids, ro) : undefined,
    };
    const order = new PromptOrder(prompts.length, o.seed);
    const batches: PromptRow[][] = [];
    const batchOf = (step: number): PromptRow[] => (batches[step] ??= order.next(perStep).map((i) => prompts[i]));
    // A resumed run's prompt order stands where the checkpoint's did: the steps before it are drawn and dropped.
    for (let s = 0; s < start; s++) {
      batchOf(s);
      batches[s] = [];
    }
    const seedOf = (step: number): number => (o.seed * 1_000_003 + step * o.batchSize) % 2 ** 31;
    const K = pool ? o.maxStaleness ?? 0 : 0;
    const importanceSampling = K > 0 ? { mode: o.importanceSamplingMode ?? 'token_truncate', max: o.importanceSamplingCap ?? 3, min: o.importanceSamplingMin } as const : undefined;
    const settings: GrpoSettings = { ...o, importanceSampling };
    const ahead = pool && K > 0 ? new RolloutsAhead(pool, policy.model, K, steps, (s) => batchOf(s).map((p) => p.ids), (s) => rolloutOptionsOf(policy.eosIds, settings, seedOf(s)), start) : null;
    const evals: GrpoRunResult['evals'] = [...earlierEvals];
    const evaluate = async (step: number): Promise<void> => {
      if (heldOut.length === 0) return;
      const record = await scoreHeldOut(models, heldOut, o);
      evals.push({ step, record });
      writer.write({ ...METRICS_HEAD, kind: 'grpo_eval', step, ...record, time: Date.now() });
      o.onEval?.(step, record);
    };
    if (start === 0) await evaluate(0);
    let last: GrpoStepRecord | null = null;
    for (let step = start; step < steps; step++) {
      const batch = batchOf(step);
      models.version = step;
      if (ahead) models.sample = () => ahead.take(step);
      last = await grpoStep(models, batch, settings, seedOf(step));
      batches[step] = [];
      // Synchronous mode: the next step's rollouts wait for these weights; asynchronous: later requests get them.
      const sent = pool ? await syncRolloutPool(pool, policy, step + 1) : null;
      writer.write({ ...METRICS_HEAD, kind: 'grpo', step, ...last, ...(sent ? { weight_sync: sent } : {}), time: Date.now() });
      o.onStep?.(step, steps, last);
      if ((o.evalEvery ?? 0) > 0 && (step + 1) % o.evalEvery! === 0 && step + 1 < steps) await evaluate(step + 1);
      // After the step's evaluation: a run resumed here has it already.
      await checkpointer?.afterStep(policy.model, architecture, optimizer, { step: step + 1, epoch: 0, batch: 0 }, steps);
    }
    if (!evals.some((e) => e.step === steps)) await evaluate(steps);
    const saved = o.save ? await savePolicy(o, policy) : [];
    events.finished(steps);
    events.end();
    return { steps, last, evals, saved };
  } catch (e) {
    events.end(e);
    throw e;
  } finally {
    saving?.stop?.dispose();
    await pool?.close();
    events.close();
    writer.close();
    await Promise.all(rewards.map(({ reward }) => reward.close?.()));
  }
}

/** The training prompts and the held-out ones: a data file and --eval-file, or a built-in task's two splits. */
function promptSets(o: GrpoRunOptions, policy: Policy): { prompts: PromptRow[]; heldOut: PromptRow[] } {
  if ((o.dataFile === undefined) === (o.task === undefined)) throw new ConfigError('command line', '--data-file', 'grpo takes its prompts from --data-file prompts.jsonl (one JSON object a line with a "prompt") or from --task addition (one of them)');
  const heldOutFile = (): PromptRow[] => (o.evalFile ? readPrompts(o.evalFile, o.promptField, policy) : []);
  if (o.dataFile !== undefined) return { prompts: readPrompts(o.dataFile, o.promptField, policy), heldOut: heldOutFile() };
  const split = additionTask(additionDigits(o.task!.name), o.task!.size, o.task!.heldOut, o.seed);
  const rows = (list: TaskRow[], part: string): PromptRow[] => list.map((row, i) => promptOf({ ...row }, `--task ${o.task!.name}: ${part} problem ${i + 1}`, 'prompt', policy));
  return { prompts: rows(split.train, 'training'), heldOut: o.evalFile ? heldOutFile() : rows(split.heldOut, 'held-out') };
}

/** Every prompt leaves room for a whole completion within the model's positions. */
function checkRoom(prompts: readonly PromptRow[], o: Pick<GrpoRunOptions, 'maxCompletionLength' | 'dataFile' | 'task'>, policy: Policy): void {
  const longest = prompts.reduce((a, p, i) => (p.ids.length > prompts[a].ids.length ? i : a), 0);
  const need = prompts[longest].ids.length + o.maxCompletionLength;
  if (need > policy.spec.context) {
    const source = o.dataFile ?? `--task ${o.task?.name}`;
    throw new ConfigError('command line', '--max-completion-length', `prompt ${longest + 1} of ${source} is ${prompts[longest].ids.length} tokens; with ${o.maxCompletionLength} more it passes the model's ${policy.spec.context} positions`);
  }
}

/** The run's folder: config.json (what was asked) and metrics.jsonl started afresh; a resumed run keeps its metrics.jsonl (cut by keepMetricsBefore) and events.jsonl. */
function startRun(o: GrpoRunOptions, policy: Policy, resumed: boolean): JsonlWriter {
  mkdirSync(o.runDir, { recursive: true });
  const { onStep: _onStep, onEval: _onEval, warn: _warn, rollout, ...asked } = o;
  // The rollout workers' settings without the token (a secret) or the spawner (a function).
  const workers = rollout ? { workers: rollout.workers, host: rollout.host, port: rollout.port, start_ms: rollout.startMs, request_ms: rollout.requestMs } : null;
  const config = { schema: CONFIG_SCHEMA, schema_version: CONFIG_SCHEMA_VERSION, command: 'grpo', ...snakeCaseKeys(asked) as object, rollout_workers: workers, fine_tune: policy.fineTune };
  writeFileSync(join(o.runDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  if (!resumed) {
    writeFileSync(join(o.runDir, 'metrics.jsonl'), '');
    resetEvents(o.runDir);
  }
  return new JsonlWriter(join(o.runDir, 'metrics.jsonl'), 1);
}

async function savePolicy(o: GrpoRunOptions, policy: Policy): Promise<string[]> {
  if (o.lora.loraRank !== undefined) return saveAdapter(o.save!, policy.model, policy.spec, o.model);
  return saveFolder(o.save!, policy.model, policy.spec, { tokenizerFrom: o.model });
}

/** The prompts in a seeded order, shuffled anew for each pass (TRL's RepeatSampler shuffles per epoch too); bench:grpo hands TRL the same order. */
export class PromptOrder {
  private readonly rng: Rng;
  private order: Int32Array;
  private at = 0;

  constructor(private readonly size: number, seed: number) {
    this.rng = new Rng(seed);
    this.order = this.rng.permutation(size);
  }

  next(count: number): number[] {
    const out: number[] = [];
    while (out.length < count) {
      if (this.at === this.size) {
        this.order = this.rng.permutation(this.size);
        this.at = 0;
      }
      out.push(this.order[this.at++]);
    }
    return out;
  }
}
