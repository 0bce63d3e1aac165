/**
 * The strategy a cluster process runs, by name: `allreduce` (every process a worker), `ps`
 * (synchronous parameter server on rank 0), `async-ps` (asynchronous parameter server), `diloco`
 * or `local-sgd` (H local steps between syncs).
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import type { Strategy } from '../strategy.js';
import type { BucketSizes } from '../exchange/buckets.js';
import { AllReduceStrategy, type Compression } from './allreduce.js';
import { DiLoCoStrategy } from './diloco.js';
import { createLocalSgdStrategy } from './local_sgd.js';
import { createAsyncPsStrategy } from './async_ps.js';
import { createParamServerStrategy } from './param_server.js';
import type { PsRecovery } from './ps_common.js';

// The names are listed with the options that choose them (one table of options: config/options/).
export { CLUSTER_STRATEGIES, type ClusterStrategyName } from '../../config/options/choices.js';
import type { ClusterStrategyName } from '../../config/options/choices.js';

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
}

export const DEFAULT_INNER_STEPS = 50;

export function createClusterStrategy(name: ClusterStrategyName, group: ProcessGroup, o: ClusterStrategyOptions): Strategy {
  switch (name) {
    case 'allreduce':
      return new AllReduceStrategy(group, {
        checksumEvery: o.checksumEvery, buckets: o.buckets, overlap: o.overlap, compression: o.compression, powerSgdRank: o.powerSgdRank,
      });
    case 'diloco':
      return new DiLoCoStrategy(group, { innerSteps: o.innerSteps ?? DEFAULT_INNER_STEPS, outerLr: o.outerLr, outerMomentum: o.outerMomentum });
    case 'local-sgd':
      return createLocalSgdStrategy(group, o.innerSteps ?? DEFAULT_INNER_STEPS);
    case 'ps':
      return createParamServerStrategy(group, {
        stragglerMs: o.stragglerMs ?? o.peerTimeoutMs, reply: o.psReply, serverTrains: o.serverTrains,
        checksumEvery: o.checksumEvery, peerTimeoutMs: o.peerTimeoutMs, recovery: o.recovery,
      });
    case 'async-ps':
      return createAsyncPsStrategy(group, {
        pushEvery: o.pushEvery, stalenessBound: o.stalenessBound, quantize: o.quantize === 'int8', peerTimeoutMs: o.peerTimeoutMs, recovery: o.recovery, balanced: o.balanced,
      });
  }
}

/** What every process must agree on about the strategy (joins the run signature). */
export function strategySignature(name: ClusterStrategyName, o: ClusterStrategyOptions): string {
  if (name === 'allreduce') {
    // Bucket cuts and codecs change the collectives' order, ranges and bytes: every rank must agree.
    const parts = [
      ...(o.overlap ? ['overlap'] : []),
      ...(o.buckets ? [`buckets=${o.buckets.firstCapFloats}/${o.buckets.capFloats}`] : []),
      ...(o.compression && o.compression !== 'none' ? [o.compression === 'powersgd' ? `powersgd=${o.powerSgdRank ?? 4}` : o.compression] : []),
    ];
    return parts.length ? `allreduce(${parts.join(',')})` : name;
  }
  if (name === 'diloco') return `diloco(h=${o.innerSteps ?? DEFAULT_INNER_STEPS},lr=${o.outerLr ?? 0.7},m=${o.outerMomentum ?? 0.9})`;
  if (name === 'local-sgd') return `local-sgd(h=${o.innerSteps ?? DEFAULT_INNER_STEPS})`;
  if (name === 'ps') return `ps(${o.psReply ?? 'weights'}${o.serverTrains ? ',server-trains' : ''})`;
  return `async-ps(k=${o.pushEvery ?? 1},s=${o.stalenessBound ?? 4}${o.quantize === 'int8' ? ',int8' : ''})`;
}
