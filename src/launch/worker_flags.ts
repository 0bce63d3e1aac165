/**
 * The values of the training flags (`train`, `worker`, `server`, `run`) and what follows from
 * them: the training config, the strategy's options, the cluster signature every peer must share,
 * the gradient-exchange flags passed on to workers. The commands (src/cli/) declare the flags; the
 * launcher, below them, reads the same values when it starts workers.
 */
import type { ModelType } from '../nn/models/index.js';
import { type BalanceModel, balanceSignature } from '../balance/index.js';
import { type DatasetName, type TrainConfig, defaultConfig } from '../train/config.js';
import { runSignature } from '../train/signature.js';
import type { Compression } from '../train/strategies/allreduce.js';
import { type ClusterStrategyName, type ClusterStrategyOptions, strategySignature } from '../train/strategies/ps_factory.js';

/** Set by the local launcher, which hosts the rendezvous store itself. */
export const LAUNCHER_STORE_ENV = 'SMOLCLUSTER_LAUNCHER_STORE';

/** Flags of the gradient exchange (allreduce's buckets and overlap); shared by train and worker. */
export interface CommFlags {
  /** Gradient bucket cap in MB (default 25, like torch DDP). */
  bucketMb?: number;
  /** First bucket's cap in MB (default 1). */
  firstBucketMb?: number;
  /** Send buckets while backward goes on. */
  overlap?: boolean;
  /** allreduce: gradient compression on the wire. */
  compress?: Compression;
  powersgdRank?: number;
  /** diloco / local-sgd: local steps between syncs, outer optimizer. */
  innerSteps?: number;
  outerLr?: number;
  outerMomentum?: number;
}

/** The worker command line for these flags (the launcher passes them on). */
export function commFlagsToArgs(f: CommFlags): string[] {
  const a: string[] = [];
  if (f.bucketMb !== undefined) a.push('--bucket-mb', String(f.bucketMb));
  if (f.firstBucketMb !== undefined) a.push('--first-bucket-mb', String(f.firstBucketMb));
  if (f.overlap) a.push('--overlap');
  const opt = (flag: string, v: string | number | undefined): void => {
    if (v !== undefined) a.push(flag, String(v));
  };
  opt('--compress', f.compress);
  opt('--powersgd-rank', f.powersgdRank);
  opt('--inner-steps', f.innerSteps);
  opt('--outer-lr', f.outerLr);
  opt('--outer-momentum', f.outerMomentum);
  return a;
}

/** Bucket caps in floats, or undefined for the defaults. */
export function bucketSizesFrom(f: CommFlags): { capFloats: number; firstCapFloats: number } | undefined {
  if (f.bucketMb === undefined && f.firstBucketMb === undefined) return undefined;
  const floats = (mb: number): number => Math.max(1, Math.floor((mb * (1 << 20)) / 4));
  return { capFloats: floats(f.bucketMb ?? 25), firstCapFloats: floats(f.firstBucketMb ?? Math.min(1, f.bucketMb ?? 1)) };
}

/** The flags every training command shares (train, worker). */
export interface TrainFlags extends CommFlags {
  model: ModelType;
  /** Size overrides of a named model (src/nn/models/presets.ts). */
  layers?: number;
  width?: number;
  heads?: number;
  init?: string;
  context?: number;
  hidden?: number[];
  dataset?: DatasetName;
  /** Fault specs to inject (src/train/faults.ts; a debug knob). */
  fault?: string[];
  epochs?: number;
  batchSize?: number;
  lr?: number;
  optimizer?: 'sgd' | 'adam' | 'adamw';
  momentum?: number;
  weightDecay?: number;
  schedule?: 'constant' | 'step' | 'cosine';
  warmupSteps?: number;
  clipGradNorm?: number;
  seed: number;
  evalEvery: number;
  maxSteps: number;
  dataDir?: string;
  /** Micro-batches per optimizer step. */
  gradAccum?: number;
  /** cifar10: random crop + flip of training images. */
  augment?: boolean;
  /** text: the file and its tokenizer. */
  dataFile?: string;
  tokenizer?: 'gpt2' | 'bytes';
  name?: string;
  experimentsDir: string;
  output?: string;
  save?: string;
  threads?: number;
  /** Tensor backend (native, js), or `gloo`: the guide's spelling of the communication backend (ours; see tensorBackend). */
  backend?: 'js' | 'native' | 'gloo';
  checksumEvery: number;
  timeout: number;
  /** Live dashboard (`train` only: addDashboardFlags): served by the launcher, or by the training process. */
  dashboard?: boolean;
  port?: number;
  dashboardHost?: string;
  /** Chrome trace of every rank's step phases: experiments/<name>/trace.json. */
  trace?: boolean;
  /** Log to Weights & Biases when @wandb/sdk and an API key are present. */
  wandb?: boolean;
  wandbProject?: string;
  /** How processes combine their work (docs/CONFIG.md); default allreduce (`server`: ps). */
  strategy?: ClusterStrategyName;
  /** SmolCluster's cluster_config.yaml and nn_config.yaml (flags override their values). */
  cluster?: string;
  nn?: string;
  /** ps: straggler deadline in seconds (cluster_config `timeout`). */
  stragglerTimeout?: number;
  psReply?: 'weights' | 'gradients';
  serverTrains?: boolean;
  /** async-ps: push every K local steps, staleness bound S, int8 pushes. */
  pushEvery?: number;
  stalenessBound?: number;
  quantize?: 'none' | 'int8';
  trackGradients?: boolean;
  /** Network interface (or address) for the data connections (env SMOLCLUSTER_IFNAME). */
  iface?: string;
  /** Load balancing (src/balance/): per-rank shares of the global batch follow measured speed. */
  enableLoadBalancing?: boolean;
  loadBalancePolicy?: 'proportional' | 'dynamic' | 'hybrid';
  rebalanceInterval?: number;
  balanceModel?: BalanceModel;
  /** Checkpoints every N steps into checkpointDir (default <experiment>/checkpoints), keeping the newest K; resume from DIR or 'auto'. */
  checkpointEvery?: number;
  checkpointDir?: string;
  keepCheckpoints?: number;
  resume?: string;
  /** An existing --name folder is replaced rather than refused (experiment.ts refuseExistingRun). */
  overwrite?: boolean;
  /** Elastic all-reduce: members may leave and join; below minWorkers the run stops. The local launcher restarts a failed worker up to maxRestarts times. */
  elastic?: boolean;
  minWorkers?: number;
  maxRestarts?: number;
}

export function configFrom(flags: TrainFlags, threads: number): TrainConfig {
  const c = defaultConfig(flags.model);
  const pick = <K extends keyof TrainConfig>(k: K, v: TrainConfig[K] | undefined): void => {
    if (v !== undefined) c[k] = v;
  };
  pick('hidden', flags.hidden);
  pick('layers', flags.layers);
  pick('width', flags.width);
  pick('heads', flags.heads);
  pick('init', flags.init);
  pick('context', flags.context);
  pick('dataset', flags.dataset);
  pick('epochs', flags.epochs);
  pick('batchSize', flags.batchSize);
  if (flags.gradAccum !== undefined && flags.gradAccum > 1) c.gradAccum = flags.gradAccum;
  pick('lr', flags.lr);
  // DiLoCo's inner optimizer is AdamW unless another is asked for.
  pick('optimizer', flags.optimizer ?? (flags.strategy === 'diloco' ? 'adamw' : undefined));
  pick('momentum', flags.momentum);
  pick('weightDecay', flags.weightDecay);
  pick('schedule', flags.schedule);
  pick('warmupSteps', flags.warmupSteps);
  pick('clipGradNorm', flags.clipGradNorm);
  pick('dataDir', flags.dataDir);
  if (flags.augment) c.augment = true;
  pick('dataFile', flags.dataFile);
  pick('tokenizer', flags.tokenizer);
  pick('trackGradients', flags.trackGradients);
  c.seed = flags.seed;
  c.evalEvery = flags.evalEvery;
  c.maxSteps = flags.maxSteps;
  c.threads = threads;
  return c;
}

/** What every process of a cluster must agree on: the run and the strategy. */
export function clusterSignature(config: TrainConfig, flags: TrainFlags): string {
  return `${runSignature(config)} ${strategySignature(flags.strategy ?? 'allreduce', strategyOptions(flags))} ${balanceSignature(flags)}`;
}

/** The strategy options the flags describe. */
export function strategyOptions(flags: TrainFlags): ClusterStrategyOptions {
  return {
    checksumEvery: flags.checksumEvery, peerTimeoutMs: flags.timeout * 1000,
    stragglerMs: flags.stragglerTimeout !== undefined ? flags.stragglerTimeout * 1000 : undefined,
    psReply: flags.psReply, serverTrains: flags.serverTrains,
    pushEvery: flags.pushEvery, stalenessBound: flags.stalenessBound, quantize: flags.quantize, balanced: flags.enableLoadBalancing === true,
    buckets: bucketSizesFrom(flags), overlap: flags.overlap, compression: flags.compress, powerSgdRank: flags.powersgdRank,
    innerSteps: flags.innerSteps, outerLr: flags.outerLr, outerMomentum: flags.outerMomentum,
  };
}
