/**
 * What follows from the values of the training flags (`train`, `worker`, `server`, `run`): the
 * training config, the strategy's options, the cluster signature every peer must share, the
 * checkpoints. The flags themselves, and the type of their values, are the option tables of
 * src/config/options/; the commands (src/cli/) declare them from there, and the launcher reads the
 * same values when it starts workers.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { balanceSignature } from '../balance/index.js';
import { CONFIG_OPTION_NAMES, type ExchangeOptionValues, type TrainFlags } from '../config/options/index.js';
import type { CheckpointOptions } from '../train/run/checkpoints.js';
import type { TrainResult } from '../train/run/result.js';
import { type TrainConfig, defaultConfig } from '../train/run/config.js';
import { isTokenModel } from '../nn/models/index.js';
import { isNamedTokenizer } from '../data/tokenizer.js';
import { initIsGguf, modelForInit } from '../train/run/init_source.js';
import { runSignature } from '../train/run/signature.js';
import { signatureWithSettings } from '../comm/tcp/signature_settings.js';
import { type ClusterStrategyOptions, strategySignature } from '../train/strategies/registry.js';

export type { TrainFlags };

/** Set by the local launcher, which hosts the rendezvous store itself. */
export const LAUNCHER_STORE_ENV = 'SMOLCLUSTER_LAUNCHER_STORE';

/** What a training process ends with: the run's result (null on ranks that report none, or a run that ended without this one) and its folder. */
export interface WorkerOutcome {
  result: TrainResult | null;
  dir: string;
}

/** Flags of the gradient exchange (allreduce's buckets and overlap, compression, DiLoCo's outer loop). */
export type CommFlags = ExchangeOptionValues;

/** Bucket caps in floats, or undefined for the defaults. */
export function bucketSizesFrom(f: CommFlags): { capFloats: number; firstCapFloats: number } | undefined {
  if (f.bucketMb === undefined && f.firstBucketMb === undefined) return undefined;
  const floats = (mb: number): number => Math.max(1, Math.floor((mb * (1 << 20)) / 4));
  return { capFloats: floats(f.bucketMb ?? 25), firstCapFloats: floats(f.firstBucketMb ?? Math.min(1, f.bucketMb ?? 1)) };
}

/** The tensor backend a --backend value selects (gloo names a communication backend: none). */
export function tensorBackend(flag: TrainFlags['backend']): 'js' | 'native' | undefined {
  return flag === 'gloo' ? undefined : flag;
}

/** Whether ranks on one host may exchange through shared memory (--comm-backend; --backend gloo means auto). */
export function sharedMemoryAllowed(flags: Pick<TrainFlags, 'commBackend'>): boolean {
  return (flags.commBackend ?? 'auto') === 'auto';
}

/**
 * Checkpoints are on by default, as a Trainer's are (its save_steps is 500 too): a run stopped by
 * Ctrl-C or a crash resumes with --resume auto. Each costs a few milliseconds for the quick start's
 * MLP, and a run shorter than the interval writes none unless interrupted (interrupt.ts).
 */
export const DEFAULT_CHECKPOINT_EVERY = 500;

/** --checkpoint-every as given, or the default (0: never). */
export function checkpointEvery(flags: Pick<TrainFlags, 'checkpointEvery'>): number {
  return flags.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
}

/** The checkpoint settings the flags describe for process `rank` (undefined: neither saving nor resuming). */
export function checkpointOptions(flags: TrainFlags, experimentDir: string, rank = 0): CheckpointOptions | undefined {
  const every = checkpointEvery(flags);
  if (every === 0 && flags.resume === undefined) return undefined;
  // An async-ps checkpoint is the server's: its model, version and where each worker stood. A
  // resumed worker takes all of it from the server (AsyncPsWorker.setup), never from the file.
  if (flags.strategy === 'async-ps' && rank !== 0) flags = { ...flags, resume: undefined };
  return { dir: flags.checkpointDir ?? join(experimentDir, 'checkpoints'), every, keep: flags.keepCheckpoints ?? 3, resume: flags.resume };
}

/**
 * The dataset a run without --dataset means: `text` when it names a --data-file for a model that
 * takes tokens (an --init folder or GGUF file, a transformer preset): the file and the model say
 * what it is (a chat JSONL is read as chat by the text dataset); otherwise none (mnist, the default).
 */
export function datasetFromData(flags: Pick<TrainFlags, 'dataset' | 'dataFile' | 'init' | 'model'>): 'text' | undefined {
  if (flags.dataset !== undefined || flags.dataFile === undefined) return undefined;
  return isTokenModel(modelForInit(flags.init, flags.model)) ? 'text' : undefined;
}

/**
 * The tokenizer --init brings: a GGUF file's, or a folder's tokenizer.json (with its
 * tokenizer_config.json's chat template), as generate and serve take them; none otherwise. A folder
 * named like a built-in tokenizer (gpt2, bytes) is named as a path.
 */
export function initTokenizer(init: string | undefined): string | undefined {
  if (initIsGguf(init)) return init;
  if (init === undefined || !existsSync(join(init, 'tokenizer.json'))) return undefined;
  return isNamedTokenizer(init) ? `./${init}` : init;
}

/** The training config the flags describe, on the model's defaults (train/run/config.ts). */
export function configFrom(flags: TrainFlags, threads: number): TrainConfig {
  // An --init folder's config.json names the family (train/run/init_source.ts).
  const c = defaultConfig(modelForInit(flags.init, flags.model));
  const fields = c as unknown as Record<string, unknown>;
  for (const name of CONFIG_OPTION_NAMES) if (flags[name] !== undefined) fields[name] = flags[name];
  c.dataset = datasetFromData(flags) ?? c.dataset;
  if (flags.gradAccum !== undefined && flags.gradAccum > 1) c.gradAccum = flags.gradAccum;
  // DiLoCo's inner optimizer is AdamW unless another is asked for.
  const optimizer = flags.optimizer ?? (flags.strategy === 'diloco' ? 'adamw' : undefined);
  if (optimizer !== undefined) c.optimizer = optimizer;
  if (flags.augment) c.augment = true;
  // A GGUF file or a Hugging Face folder carries its tokenizer (and chat template): the one its model was trained with.
  c.tokenizer ??= initTokenizer(flags.init);
  c.threads = threads;
  return c;
}

/**
 * What every process of a cluster must agree on: the run and the strategy, followed by the settings
 * it was made from, so that a refused peer is told which flags differ and both values.
 */
export function clusterSignature(config: TrainConfig, flags: TrainFlags): string {
  // The precision right after the run, where a refused peer's shortened signature still shows it.
  const text = `${runSignature(config)}${precisionSignature(flags)} ${strategySignature(flags.strategy ?? 'allreduce', strategyOptions(flags))} ${balanceSignature(flags)}`;
  return signatureWithSettings(text, clusterSettings(config, flags));
}

/** The settings a cluster signature covers, by flag (--batch-size), as printable values; per-host ones left out as in runSignature. */
export function clusterSettings(config: TrainConfig, flags: Pick<TrainFlags, 'strategy' | 'precision'>): Record<string, string> {
  const { threads: _t, dataDir: _d, dataFile: _f, valFile: _v, precision: _p, precisionAuto: _a, device: _dev, ...shared } = config;
  const settings: Record<string, string> = { '--strategy': flags.strategy ?? 'allreduce', '--precision': flags.precision ?? 'fp32' };
  for (const [key, value] of Object.entries(shared)) {
    if (value === undefined) continue;
    settings[`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`] = Array.isArray(value) ? value.join(',') : String(value);
  }
  return settings;
}

/** The precision every peer must have asked for (as typed: auto's choice is rank 0's); empty for fp32, so fp32 peers match older ones. */
function precisionSignature(flags: Pick<TrainFlags, 'precision'>): string {
  return (flags.precision ?? 'fp32') === 'fp32' ? '' : ` precision ${flags.precision}`;
}

/** The strategy options the flags describe. */
export function strategyOptions(flags: TrainFlags): ClusterStrategyOptions {
  if (flags.zero !== undefined && flags.elastic) throw new Error(`--zero ${flags.zero} cannot be combined with --elastic: the shards are cut for a fixed world size`);
  return {
    checksumEvery: flags.checksumEvery, peerTimeoutMs: flags.timeout * 1000,
    stragglerMs: flags.stragglerTimeout !== undefined ? flags.stragglerTimeout * 1000 : undefined,
    psReply: flags.psReply, serverTrains: flags.serverTrains,
    pushEvery: flags.pushEvery, stalenessBound: flags.stalenessBound, quantize: flags.quantize, balanced: flags.enableLoadBalancing === true,
    buckets: bucketSizesFrom(flags), overlap: flags.overlap, compression: flags.compress, powerSgdRank: flags.powersgdRank,
    innerSteps: flags.innerSteps, outerLr: flags.outerLr, outerMomentum: flags.outerMomentum,
    tensorParallel: flags.tensorParallel, expertParallel: flags.expertParallel, zero: flags.zero,
    pipelineStages: flags.pipelineStages, microBatches: flags.microBatches, pipelineSchedule: flags.pipelineSchedule,
  };
}
