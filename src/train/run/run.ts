import { ensureWritable, ensureWritableFolder } from '../../util/writable.js';
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { RegressionDataset, TokenTask } from '../../data/dataset.js';
import { GUIDE_DATASETS, type GuideDatasetName, loadDataset } from '../../data/load.js';
import { chatFormatFor } from './chat_format.js';
import { loadMnist } from '../../data/mnist.js';
import { syntheticRegression } from '../../data/synthetic.js';
import { type NodeSummary, RunEvents, eventsFile, launcherOwnsRun, resetEvents } from '../../metrics/events.js';
import { fanOut } from '../../metrics/fanout.js';
import { StepMetricsObserver } from '../../metrics/step_metrics.js';
import { TraceObserver, finalizeTrace, resetTrace } from '../../metrics/trace.js';
import { saveModel } from '../../nn/checkpoint.js';
import { modelOnHost } from '../boundary/model_on_host.js';
import { type SaveDtype, isSafetensorsPath, saveSafetensors } from '../../nn/interchange/model_io.js';
import { ConfigError } from '../../util/errors.js';
import { backend } from '../../tensor/dispatch.js';
import type { TrainConfig } from './config.js';
import { type ExperimentPaths, createExperiment, currentResult } from './experiment.js';
import { type FaultSpec, FaultInjector } from '../loop/faults.js';
import { type TrainData, type TrainObserver, specFor, train } from '../loop/loop.js';
import { type GgufScheme, checkGgufTarget, isGgufTarget, saveGgufModel } from './save_gguf.js';
import { GGUF_SCHEMES } from '../../nn/quantize_model.js';
import { checkTrainingMemory } from './memory_estimate.js';
import { MonitorLog, RunMonitors } from '../loop/monitors.js';
import { type TrainResult, buildResult, runSteps, totalsVector, unpackTotals, writeResult } from './result.js';
import { tokenThroughputInfo } from './token_throughput.js';
import type { BatchShares } from '../loop/shares.js';
import { type Strategy, isLeader } from '../strategies/strategy.js';
import { type CheckpointOptions, Checkpointer, hasCheckpoints } from './checkpoints.js';
import { StopRequest } from './interrupt.js';
import { resumeSignature } from './signature.js';
import { settlePrecision } from '../engine/precision.js';
import { isTokenModel } from '../../nn/models/index.js';
import { isFolderTarget } from '../../nn/interchange/hf_folder.js';
import { checkInitSource } from './init_source.js';
import { saveRunFolder } from './save_folder.js';
import { mergeLora, saveAdapter } from '../../nn/lora/index.js';
import { describeMergeKept } from '../../nn/lora/merge_report.js';
import { trainsLora } from '../loop/fine_tune.js';
import { BEST_FOLDER, BestModel } from './best_model.js';

export interface RunOptions {
  config: TrainConfig;
  strategy: Strategy;
  experiment: ExperimentPaths;
  /** Extra observer for rank 0 (the progress bar). */
  observer?: TrainObserver;
  /** Another copy of result.json (--output). */
  output?: string;
  /** Model file to save at the end (rank 0). */
  save?: string;
  /** The dtype a safetensors `save` holds its weights in (default fp32; --save-dtype). */
  saveDtype?: SaveDtype;
  /** --save X.gguf: the matrices' formats (default float32). */
  saveQuantize?: GgufScheme;
  /** A Hugging Face folder `save` is sharded above this many bytes (default 5 GB; --save-shard-size). */
  saveShardSize?: number;
  /** Record every rank's step phases into the experiment's trace.json (--trace). */
  trace?: boolean;
  /** Where monitors and faults report (default: the experiment's events.jsonl, closed at the end). */
  events?: MonitorLog;
  /** Faults to inject (faults.ts); each acts only on its rank. */
  faults?: FaultSpec[];
  /** Measured, unequal batch shares (load balancing, src/balance/). */
  balance?: BatchShares;
  /** What this process's node brings (`smolcluster info`), reported in its worker_joined event. */
  node?: NodeSummary;
  /** Periodic checkpoints and --resume (checkpoints.ts). */
  checkpoints?: CheckpointOptions;
  /** A restarted worker rejoining a running run: the run's folder is not reset (even by rank 0). */
  rejoin?: boolean;
  /** The leader, after every rank finished and before result.json and run_end (e.g. collect the streamed lines). */
  beforeEnd?: () => Promise<void>;
}

/** The synthetic regression set: train and test parts of one seeded draw (same teacher). */
export const SYNTHETIC_REGRESSION = { train: 7680, test: 1024, inputDim: 16, outputDim: 4, noise: 0.1 } as const;

/**
 * The training and test sets a config names — the one place data is loaded. The synthetic set's
 * train size (7680) divides by 1–6, 8, 10, 12, 15 and 16, so N workers at batch B see exactly the
 * global batches of one process at batch N·B.
 */
export function loadTrainData(
  config: Pick<TrainConfig, 'dataset' | 'dataDir' | 'seed' | 'context' | 'augment' | 'dataFile' | 'tokenizer' | 'valFile' | 'valFraction' | 'textField' | 'chat' | 'packing'> & { model?: string },
): TrainData {
  if (config.dataset === 'mnist') return loadMnist({ dataDir: config.dataDir });
  if ((GUIDE_DATASETS as readonly string[]).includes(config.dataset)) {
    return loadDataset({
      name: config.dataset as GuideDatasetName, seed: config.seed, tokenTask: tokenTaskFor(config.model), contextLength: config.context,
      dataDir: config.dataDir, augment: config.augment, dataFile: config.dataFile, tokenizer: config.tokenizer,
      validationFile: config.valFile, validationFraction: config.valFraction, textField: config.textField,
      chat: config.chat, packing: config.packing, chatFormat: () => chatFormatFor(config.tokenizer),
    });
  }
  const s = SYNTHETIC_REGRESSION;
  const all = syntheticRegression({ seed: config.seed, samples: s.train + s.test, inputDim: s.inputDim, outputDim: s.outputDim, noise: s.noise });
  const part = (from: number, to: number, name: string): RegressionDataset => ({
    ...all, name: `${all.name}-${name}`, size: to - from,
    inputs: all.inputs.subarray(from * s.inputDim, to * s.inputDim),
    targets: all.targets.subarray(from * s.outputDim, to * s.outputDim),
  });
  return { train: part(0, s.train, 'train'), test: part(s.train, s.train + s.test, 'test') };
}

/** --save-dtype narrows a safetensors export only: our model file and checkpoints keep fp32 master weights. */
function checkSaveDtype(save: string | undefined, dtype: SaveDtype | undefined, quantize: GgufScheme | undefined): void {
  if (quantize !== undefined && (save === undefined || !isGgufTarget(save))) {
    throw new ConfigError('command line', '--save-quantize', `${quantize} is written into a GGUF file only: --save X.gguf${save === undefined ? '' : `, not ${save}`}`);
  }
  if (dtype === undefined || dtype === 'fp32') return;
  if (save !== undefined && isGgufTarget(save)) throw new ConfigError('command line', '--save-dtype', `${dtype}: --save ${save} writes float32 or --save-quantize's formats (${GGUF_SCHEMES.join(', ')})`);
  if (save === undefined) throw new ConfigError('command line', '--save-dtype', `${dtype} needs --save x.safetensors or --save DIR (what it narrows)`);
  if (!isSafetensorsPath(save) && !isFolderTarget(save)) throw new ConfigError('command line', '--save-dtype', `${dtype} is written to safetensors only, and --save ${save} is not a .safetensors name (smolcluster's model file and checkpoints keep fp32)`);
}

/** --save DIR writes a Hugging Face folder, which only the transformer families have; a file must be writable. */
function checkSaveTarget(save: string, config: Pick<TrainConfig, 'model' | 'loraRank' | 'adapter' | 'mergeLora'>): void {
  if (trainsLora(config) && !config.mergeLora && !isFolderTarget(save)) {
    throw new ConfigError('command line', '--save', `${save} is a file; LoRA saves a PEFT adapter folder (a name without extension), or with --merge-lora the merged model`);
  }
  if (!isFolderTarget(save)) return ensureWritable(save, '--save');
  if (!isTokenModel(config.model)) {
    throw new ConfigError('command line', '--save', `${save} names a folder (a Hugging Face model folder), which a ${config.model} has none of; save it as x.safetensors or x.smol`);
  }
  ensureWritableFolder(save, '--save');
}

/** BERT models learn masked tokens; every other model of a token dataset predicts the next token. */
export function tokenTaskFor(model: string | undefined): TokenTask {
  return model?.startsWith('bert') ? 'masked-lm' : 'language-model';
}

/** result.json's record of the best evaluation (docs/RESULT.md `best`) and of early stopping. */
function bestFields(best: BestModel | undefined, stopped: { step: number; patience: number } | undefined): Pick<TrainResult, 'best' | 'stopped_early'> {
  const r = best?.record;
  return {
    ...(r ? { best: { step: r.step, eval_loss: r.loss, file: r.file } } : {}),
    ...(stopped ? { stopped_early: { step: stopped.step, patience: stopped.patience } } : {}),
  };
}

/** Whether the run continues from a checkpoint: --resume DIR always (it refuses an empty one), auto when there is one. */
function resumable(c: CheckpointOptions | undefined): boolean {
  if (c?.resume === undefined) return false;
  return c.resume !== 'auto' || hasCheckpoints(c.dir);
}

/**
 * One process's part of a run, the same for a single process and for every worker of a cluster:
 * rank 0 creates the experiment folder, every rank appends its steps to metrics.jsonl, and rank 0
 * writes result.json with every rank's totals.
 */
export async function runTraining(o: RunOptions): Promise<TrainResult | null> {
  const { config, strategy } = o;
  const rank = strategy.rank;
  const startedAt = new Date();
  // Data first, so a bad --data-dir leaves no folder behind. Rank 0 then creates (and resets) the
  // folder before strategy setup, which no rank passes without rank 0.
  // Before any training: a result or model that cannot be written is refused now, not at the end.
  if (rank === 0 && o.output) ensureWritable(o.output, '--output');
  if (rank === 0 && o.save) checkSaveTarget(o.save, config);
  checkSaveDtype(o.save, o.saveDtype, o.saveQuantize);
  const data = loadTrainData(config);
  // A missing --init, or a folder the flags contradict, is refused before the run's folder exists.
  if (rank === 0) checkInitSource(config, data.train);
  if (rank === 0 && o.save && isGgufTarget(o.save)) checkGgufTarget(o.save, config, specFor(config, data.train).type === 'llama');
  // A fine-tuning run that cannot fit this machine is refused before anything is loaded.
  const memory = config.init !== undefined ? checkTrainingMemory(config, specFor(config, data.train), data.train.inputShape[0], 1, strategy.modelBuilder?.stageSplit) : null;
  if (rank === 0 && memory) process.stderr.write(`smolcluster: memory estimate per process ${memory}\n`);
  const events = o.events ?? new MonitorLog(eventsFile(o.experiment.dir), rank);
  // auto resolved before config.json is written (a cluster's ranks agreed on it already: train/engine/precision_agreement.ts).
  settlePrecision(config);
  const resuming = resumable(o.checkpoints);
  if (rank === 0 && o.checkpoints?.resume === 'auto' && !resuming) process.stderr.write(`smolcluster: --resume auto: nothing to resume in ${o.checkpoints.dir}; starting at step 0\n`);
  const finishedResult = rank === 0 && resuming ? currentResult(o.experiment) : null;
  if (rank === 0 && !o.rejoin) {
    // Nothing to resume: the folder starts over, so an earlier attempt's records are not kept twice.
    createExperiment(o.experiment, { ...config, workers: strategy.worldSize, strategy: strategy.name }, { resuming });
    // Truncated, not removed: ranks append to the same file. The local launcher resets it itself.
    if (!launcherOwnsRun()) resetEvents(o.experiment.dir);
    resetTrace(o.experiment.dir, o.trace === true);
  }
  const kernels = backend();
  const runEvents = new RunEvents(o.experiment.dir, rank, {
    workers: strategy.worldSize, backend: kernels.description, threads: kernels.getThreads(), owner: rank === 0 && !launcherOwnsRun(), node: o.node,
  });
  const monitors = new RunMonitors(rank, strategy.worldSize, events, strategy.sharesHealth === true);
  const faults = new FaultInjector(o.faults ?? [], rank, strategy.worldSize, events);
  const metrics = new StepMetricsObserver(o.experiment.metrics, rank, strategy.planning?.steps ? 1 : 64);
  // Sharded checkpoints name the run at its global batch (the same whatever the world size), and
  // like every checkpoint leave out how long it goes on: a resharded resume may ask for more steps.
  const globalRun = `${resumeSignature({ ...config, batchSize: config.batchSize * (strategy.dataShard?.count ?? strategy.worldSize) })} ${strategy.name}`;
  // A strategy whose ranks keep state of their own checkpoints every rank (Strategy.checkpointing).
  const ranked = strategy.checkpointing;
  // Ctrl-C saves the step just taken (interrupt.ts) when the run checkpoints at all.
  const stop = o.checkpoints && o.checkpoints.every > 0 ? StopRequest.watch() : undefined;
  // Model, data and optimizer identify the run a checkpoint resumes; steps and the number of workers may change.
  const checkpoints = o.checkpoints && new Checkpointer(o.checkpoints, `${resumeSignature(config)} ${strategy.name}`, rank === 0, {
    saved: (file, step) => runEvents.checkpointSaved(file, step),
    refused: (file, why) => {
      process.stderr.write(`smolcluster: rank ${rank}: checkpoint refused: ${why}; trying the one before it\n`);
      runEvents.checkpointRefused(file, why);
    },
  }, o.balance?.shares ? () => o.balance!.shares! : undefined,
  ranked?.checkpointBuffers ? {
    rank, buffers: (model) => ranked.checkpointBuffers!(model),
    // Resharding keeps the global batch: the run's identity at it holds whatever the world size.
    ...(ranked.checkpointManifest ? { manifest: (dir: string) => ranked.checkpointManifest!(dir, globalRun) } : {}),
    ...(ranked.checkpointSourceRank ? { sourceRank: (n: number) => ranked.checkpointSourceRank!(n) } : {}),
    ...(ranked.restoreResharded ? { reshard: (dir, model, arch, opt, _run, steps) => ranked.restoreResharded!(dir, model, arch, opt, globalRun, steps) } : {}),
  } : undefined, strategy.worldSize, stop);
  // The model of the lowest evaluation loss, in best/ beside the checkpoints (best_model.ts).
  const best = config.saveBest || config.earlyStoppingPatience !== undefined
    ? new BestModel(join(o.checkpoints?.dir ?? join(o.experiment.dir, 'checkpoints'), BEST_FOLDER), resuming, rank === 0)
    : undefined;
  const resumeLine: TrainObserver = {
    onResume: (step, file, r) => {
      process.stderr.write(`smolcluster: resumed from step ${step} (${file})\n`);
      if (r) process.stderr.write(`smolcluster: the learning-rate schedule was planned over ${r.plannedSteps} steps and now runs over ${r.totalSteps}: at step ${step} the learning rate goes from ${r.lrBefore.toPrecision(3)} to ${r.lrAfter.toPrecision(3)} (keep --max-steps ${r.plannedSteps} to continue the old schedule)\n`);
    },
  };
  const observers = fanOut(
    metrics, runEvents, ...(rank === 0 ? [resumeLine] : []),
    ...(o.trace ? [new TraceObserver(o.experiment.dir, rank, hostname())] : []),
    ...(rank === 0 && o.observer ? [o.observer] : []),
  );
  try {
    const outcome = await train(config, data, strategy, observers, {
      monitors, faults: faults.enabled ? faults : undefined, balance: o.balance, checkpoints, best, wholeModelAtEnd: Boolean(o.save),
    });
    if (outcome.finishedBefore) {
      // Its result.json and saved model stay the finished run's: nothing here is newer.
      const { step, totalSteps } = outcome.finishedBefore;
      if (finishedResult !== null) writeFileSync(o.experiment.result, finishedResult);
      if (rank === 0) process.stderr.write(`smolcluster: ${o.experiment.dir} finished at step ${step} of ${totalSteps} already: nothing to train (a larger --max-steps or --epochs continues it)\n`);
      return null;
    }
    if (outcome.stoppedEarly) {
      const s = outcome.stoppedEarly;
      process.stderr.write(`smolcluster: early stopping after step ${s.step}: the evaluation loss has not improved for ${s.patience} evaluation${s.patience > 1 ? 's' : ''}${outcome.best ? ` (best ${outcome.best.loss.toFixed(4)} at step ${outcome.best.step})` : ''}\n`);
    }
    const perRank = unpackTotals(await strategy.gather(totalsVector(outcome, config.device)));
    const extra = strategy.leadership?.resultFields ? await strategy.leadership.resultFields() : {};
    runEvents.finished(runSteps(outcome));
    // Every rank takes part in gathering a model each rank holds a part of.
    const saved = o.save && strategy.modelBuilder?.savedModel ? await strategy.modelBuilder.savedModel(outcome.model, outcome.spec) : outcome.model;
    if (!isLeader(strategy)) return null;
    await o.beforeEnd?.();
    const result = {
      ...buildResult(config, outcome, {
        backend: kernels.description, threads: kernels.getThreads(), startedAt, endedAt: new Date(), strategy: strategy.name, perRank, trainers: strategy.dataShard?.count,
        ...tokenThroughputInfo(config, outcome.spec, data.train, kernels),
      }),
      ...extra,
      ...bestFields(best, outcome.stoppedEarly),
    };
    writeResult(o.experiment.result, result);
    if (o.output) writeResult(o.output, result);
    if (o.save) {
      // --save-best, early stopping: the best model, as the Trainer's load_best_model_at_end.
      if (best?.record) best.loadInto(saved!, outcome.spec);
      const meta = { steps: runSteps(outcome), seed: config.seed, ...(best?.record ? { best_step: best.record.step, best_eval_loss: best.record.loss } : {}) };
      // LoRA: the PEFT adapter folder, or (--merge-lora) the base with the adapters merged in.
      const adapterOnly = trainsLora(config) && !config.mergeLora;
      // A merge into 4-bit blocks can round a fine-tune away: say what each form keeps of it.
      const kept = config.mergeLora ? await describeMergeKept(saved!, isGgufTarget(o.save) ? o.saveQuantize : undefined) : null;
      if (kept) process.stderr.write(`smolcluster: --merge-lora: ${kept}\n`);
      // A GGUF file merges each weight as it is written (no merged copy of the model).
      if (isGgufTarget(o.save)) await saveGgufModel(o.save, trainsLora(config) ? saved! : await modelOnHost(saved!, outcome.spec), outcome.spec, config, o.saveQuantize, trainsLora(config));
      else {
        const model = adapterOnly ? saved! : config.mergeLora ? await mergeLora(saved!, outcome.spec) : await modelOnHost(saved!, outcome.spec);
        if (adapterOnly) await saveAdapter(o.save, model, outcome.spec, config.init ?? '');
        else if (isFolderTarget(o.save)) saveRunFolder(o.save, model, outcome.spec, config, { dtype: o.saveDtype, shardBytes: o.saveShardSize, meta });
        else if (isSafetensorsPath(o.save)) saveSafetensors(o.save, model, outcome.spec, meta, o.saveDtype);
        else await saveModel(o.save, model, outcome.spec, meta);
      }
      runEvents.modelSaved(o.save, outcome.steps);
    }
    // Every rank closed its part of the trace before the gather above.
    if (o.trace) finalizeTrace(o.experiment.dir);
    runEvents.end();
    return result;
  } catch (err) {
    runEvents.end(err);
    throw err;
  } finally {
    stop?.dispose();
    runEvents.close();
    metrics.onEnd();
    if (!o.events) events.close();
    await strategy.close();
  }
}

