/**
 * Every strategy a cluster process can run, by name: how to build it over the process group and
 * what every process must agree on about it (joins the run signature). A new strategy is one entry.
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import type { Strategy } from './strategy.js';
import type { BucketSizes } from '../exchange/buckets.js';
import { AllReduceStrategy, type Compression } from './allreduce.js';
import { DiLoCoStrategy } from './diloco.js';
import { createLocalSgdStrategy } from './local_sgd.js';
import { createAsyncPsStrategy } from './async_ps.js';
import { createParamServerStrategy } from './param_server.js';
import type { PsRecovery } from './ps_common.js';
import { TensorParallelStrategy } from './tensor_parallel.js';
import { ExpertParallelStrategy } from './expert_parallel.js';
import { PipelineStrategy, type PipelineOptions } from './pipeline.js';
import type { PipelineScheduleName } from '../../parallel/pipeline/schedule.js';
import { ZeroStrategy } from './zero.js';
import type { StageSplit } from '../run/memory_estimate.js';
// The names are listed with the options that choose them (config/options/choices.ts, a layer below);
// `satisfies` above makes the compiler hold the two lists equal.
import { CLUSTER_STRATEGIES, type ClusterStrategyName } from '../../config/options/choices.js';
export { CLUSTER_STRATEGIES, type ClusterStrategyName };

export interface ClusterStrategyOptions {
  checksumEvery: number;
  /** Deadline of every wait on a peer (ms). */
  peerTimeoutMs: number;
  /** ps: straggler deadline (ms). */
  stragglerMs?: number;
  psReply?: 'weights' | 'gradients';
  /** ps, async-ps: re-admission of workers and reconnection to a restarted server (comm/hub.ts). */
  recovery?: PsRecovery;
  serverTrains?: boolean;
  /** async-ps */
  pushEvery?: number;
  stalenessBound?: number;
  quantize?: 'none' | 'int8';
  /** async-ps: workers claim batches by push cadence (--enable-load-balancing). */
  balanced?: boolean;
  /** allreduce: gradient bucket caps and overlap with backward. */
  buckets?: BucketSizes;
  overlap?: boolean;
  compression?: Compression;
  powerSgdRank?: number;
  /** diloco, local-sgd */
  innerSteps?: number;
  outerLr?: number;
  outerMomentum?: number;
  /** ZeRO stage (allreduce only; absent: plain data parallelism). */
  zero?: 1 | 2 | 3;
  /** Tensor-parallel degree (default 1): groups of T ranks split the model, the strategy runs across the groups. */
  tensorParallel?: number;
  /** Expert-parallel degree (default 1): groups of E ranks split each mixture of experts' experts, data parallel across all ranks. */
  expertParallel?: number;
  /** Pipeline stages (default 1): groups of P ranks each hold a pipeline, the strategy runs across them. */
  pipelineStages?: number;
  microBatches?: number;
  pipelineSchedule?: PipelineScheduleName;
}

export const DEFAULT_MICRO_BATCHES = 4;
export const DEFAULT_PIPELINE_SCHEDULE: PipelineScheduleName = '1f1b';

export const DEFAULT_INNER_STEPS = 50;

/** One strategy: how it is built, and its part of the run signature. */
interface StrategyEntry {
  build(group: ProcessGroup, o: ClusterStrategyOptions): Strategy;
  signature(o: ClusterStrategyOptions): string;
}

/** In the order the CLI lists them. */
const STRATEGIES = {
  /** Every process a worker; gradients all-reduced. */
  allreduce: {
    build: (group, o) => new AllReduceStrategy(group, {
      checksumEvery: o.checksumEvery, buckets: o.buckets, overlap: o.overlap, compression: o.compression, powerSgdRank: o.powerSgdRank,
    }),
    signature: (o) => {
      // Bucket cuts and codecs change the collectives' order, ranges and bytes: every rank must agree.
      const parts = [
        ...(o.overlap ? ['overlap'] : []),
        ...(o.buckets ? [`buckets=${o.buckets.firstCapFloats}/${o.buckets.capFloats}`] : []),
        ...(o.compression && o.compression !== 'none' ? [o.compression === 'powersgd' ? `powersgd=${o.powerSgdRank ?? 4}` : o.compression] : []),
      ];
      return parts.length ? `allreduce(${parts.join(',')})` : 'allreduce';
    },
  },
  /** Synchronous parameter server on rank 0. */
  ps: {
    build: (group, o) => createParamServerStrategy(group, {
      stragglerMs: o.stragglerMs ?? o.peerTimeoutMs, reply: o.psReply, serverTrains: o.serverTrains,
      checksumEvery: o.checksumEvery, peerTimeoutMs: o.peerTimeoutMs, recovery: o.recovery,
    }),
    signature: (o) => `ps(${o.psReply ?? 'weights'}${o.serverTrains ? ',server-trains' : ''})`,
  },
  /** Asynchronous parameter server. */
  'async-ps': {
    build: (group, o) => createAsyncPsStrategy(group, {
      pushEvery: o.pushEvery, stalenessBound: o.stalenessBound, quantize: o.quantize === 'int8', peerTimeoutMs: o.peerTimeoutMs, recovery: o.recovery, balanced: o.balanced,
    }),
    signature: (o) => `async-ps(k=${o.pushEvery ?? 1},s=${o.stalenessBound ?? 4}${o.quantize === 'int8' ? ',int8' : ''})`,
  },
  /** H local steps between syncs of an outer optimizer. */
  diloco: {
    build: (group, o) => new DiLoCoStrategy(group, { innerSteps: o.innerSteps ?? DEFAULT_INNER_STEPS, outerLr: o.outerLr, outerMomentum: o.outerMomentum }),
    signature: (o) => `diloco(h=${o.innerSteps ?? DEFAULT_INNER_STEPS},lr=${o.outerLr ?? 0.7},m=${o.outerMomentum ?? 0.9})`,
  },
  /** H local steps between parameter averages. */
  'local-sgd': {
    build: (group, o) => createLocalSgdStrategy(group, o.innerSteps ?? DEFAULT_INNER_STEPS),
    signature: (o) => `local-sgd(h=${o.innerSteps ?? DEFAULT_INNER_STEPS})`,
  },
} satisfies Record<ClusterStrategyName, StrategyEntry>;

/** Builds strategy `name` over the process group. */
export function createClusterStrategy(name: ClusterStrategyName, group: ProcessGroup, o: ClusterStrategyOptions): Strategy {
  if ((o.expertParallel ?? 1) > 1) return expertParallelStrategy(name, group, o, o.expertParallel!);
  if (o.zero !== undefined) return zeroStrategy(name, group, o, o.zero);
  const stages = o.pipelineStages ?? 1;
  if (stages > 1) {
    if (name !== 'allreduce') throw new Error(`--pipeline-stages ${stages}: runs with --strategy allreduce, not ${name}`);
    return new PipelineStrategy(group, pipelineOptions(o), (dataParallel) => entry(name).build(dataParallel, o), name);
  }
  const degree = o.tensorParallel ?? 1;
  if (degree === 1) return entry(name).build(group, o);
  // The data-parallel strategy averages each shard's gradients over its group: all-reduce's exchange is the one that does that.
  if (name !== 'allreduce') throw new Error(`--tensor-parallel ${degree}: runs with --strategy allreduce, not ${name}`);
  return new TensorParallelStrategy(group, degree, (dataParallel) => entry(name).build(dataParallel, o), name);
}

/** What every process must agree on about the strategy (joins the run signature). */
export function strategySignature(name: ClusterStrategyName, o: ClusterStrategyOptions): string {
  const degree = o.tensorParallel ?? 1;
  const stages = o.pipelineStages ?? 1;
  const pp = stages > 1 ? (({ microBatches, schedule }) => `+pp${stages}(m=${microBatches},${schedule})`)(pipelineOptions(o)) : '';
  const ep = (o.expertParallel ?? 1) > 1 ? `+ep${o.expertParallel}` : '';
  return entry(name).signature(o) + pp + (degree > 1 ? `+tp${degree}` : '') + (o.zero !== undefined ? `+zero${o.zero}` : '') + ep;
}

/** --expert-parallel E: for allreduce alone; the options it cannot be combined with are refused by name. */
function expertParallelStrategy(name: ClusterStrategyName, group: ProcessGroup, o: ClusterStrategyOptions, degree: number): Strategy {
  const flag = `--expert-parallel ${degree}`;
  if (name !== 'allreduce') throw new Error(`${flag}: runs with --strategy allreduce, not ${name}`);
  if (o.zero !== undefined) throw new Error(`${flag} cannot be combined with --zero ${o.zero} yet`);
  if ((o.tensorParallel ?? 1) > 1) throw new Error(`${flag} cannot be combined with --tensor-parallel ${o.tensorParallel} yet`);
  if ((o.pipelineStages ?? 1) > 1) throw new Error(`${flag} cannot be combined with --pipeline-stages ${o.pipelineStages} yet`);
  if (o.compression && o.compression !== 'none') throw new Error(`${flag} cannot be combined with --compress ${o.compression}: its reductions send float32`);
  if (o.overlap) throw new Error(`${flag} cannot be combined with --overlap`);
  return new ExpertParallelStrategy(group, degree);
}

/** The stages a process's memory estimate divides a quantized base over (pipeline stages that take one: PipelineStrategy.takesQuantizedBase), or none. */
export function stageSplitOf(o: PipelineFlags): StageSplit | undefined {
  const p = pipelineOptions(o);
  return p.stages > 1 && (p.tensorParallel ?? 1) === 1 && o.zero === undefined ? { stages: p.stages, microBatches: p.microBatches, schedule: p.schedule } : undefined;
}

/** The flags that shape a pipeline. */
type PipelineFlags = Pick<ClusterStrategyOptions, 'pipelineStages' | 'microBatches' | 'pipelineSchedule' | 'tensorParallel' | 'zero'>;

function pipelineOptions(o: PipelineFlags): PipelineOptions {
  return { stages: o.pipelineStages ?? 1, microBatches: o.microBatches ?? DEFAULT_MICRO_BATCHES, schedule: o.pipelineSchedule ?? DEFAULT_PIPELINE_SCHEDULE, tensorParallel: o.tensorParallel };
}

/** --zero N: sharded data parallelism, for allreduce; the options it cannot be combined with are refused by name. */
function zeroStrategy(name: ClusterStrategyName, group: ProcessGroup, o: ClusterStrategyOptions, stage: 1 | 2 | 3): Strategy {
  if (name !== 'allreduce') throw new Error(`--zero ${stage}: runs with --strategy allreduce, not ${name}`);
  if ((o.tensorParallel ?? 1) > 1) throw new Error(`--zero ${stage} cannot be combined with --tensor-parallel ${o.tensorParallel} yet`);
  if (o.compression && o.compression !== 'none') throw new Error(`--zero ${stage} cannot be combined with --compress ${o.compression}: the reduce-scatter sends float32`);
  // --zero 1 shards each pipeline stage's optimizer state over the stage's replicas (pipeline.ts); 2 and 3 are refused there.
  if ((o.pipelineStages ?? 1) > 1) return new PipelineStrategy(group, { ...pipelineOptions(o), zero: stage, checksumEvery: o.checksumEvery }, (dataParallel) => entry(name).build(dataParallel, o), name);
  if (stage === 3 && o.balanced) throw new Error('--zero 3 cannot be combined with --enable-load-balancing: every rank gathers the layers together, so no rank may get an empty share');
  return new ZeroStrategy(group, { stage, buckets: o.buckets, overlap: o.overlap, checksumEvery: o.checksumEvery });
}

function entry(name: string): StrategyEntry {
  if (!Object.hasOwn(STRATEGIES, name)) throw new Error(`unknown strategy "${name}" (known: ${CLUSTER_STRATEGIES.join(', ')})`);
  return STRATEGIES[name as ClusterStrategyName];
}
