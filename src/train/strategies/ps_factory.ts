/**
 * The strategy a cluster process runs, by name: `allreduce` (every process a worker), `ps`
 * (synchronous parameter server on rank 0) or `async-ps` (asynchronous parameter server).
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import type { Strategy } from '../strategy.js';
import type { BucketSizes } from '../exchange/buckets.js';
import { AllReduceStrategy } from './allreduce.js';
import { createAsyncPsStrategy } from './async_ps.js';
import { createParamServerStrategy } from './param_server.js';

export type ClusterStrategyName = 'allreduce' | 'ps' | 'async-ps';

export interface ClusterStrategyOptions {
  checksumEvery: number;
  /** Deadline of every wait on a peer (ms). */
  peerTimeoutMs: number;
  /** ps: straggler deadline (ms). */
  stragglerMs?: number;
  psReply?: 'weights' | 'gradients';
  serverTrains?: boolean;
  /** async-ps */
  pushEvery?: number;
  stalenessBound?: number;
  quantize?: 'none' | 'int8';
  /** allreduce: gradient bucket caps and overlap with backward. */
  buckets?: BucketSizes;
  overlap?: boolean;
}

export function createClusterStrategy(name: ClusterStrategyName, group: ProcessGroup, o: ClusterStrategyOptions): Strategy {
  switch (name) {
    case 'allreduce':
      return new AllReduceStrategy(group, { checksumEvery: o.checksumEvery, buckets: o.buckets, overlap: o.overlap });
    case 'ps':
      return createParamServerStrategy(group, {
        stragglerMs: o.stragglerMs ?? o.peerTimeoutMs, reply: o.psReply, serverTrains: o.serverTrains,
        checksumEvery: o.checksumEvery, peerTimeoutMs: o.peerTimeoutMs,
      });
    case 'async-ps':
      return createAsyncPsStrategy(group, {
        pushEvery: o.pushEvery, stalenessBound: o.stalenessBound, quantize: o.quantize === 'int8', peerTimeoutMs: o.peerTimeoutMs,
      });
  }
}

/** What every process must agree on about the strategy (joins the run signature). */
export function strategySignature(name: ClusterStrategyName, o: ClusterStrategyOptions): string {
  if (name === 'allreduce') {
    // Bucket cuts change the collectives' order and ranges: every rank must cut the same way.
    const b = o.buckets ? `,buckets=${o.buckets.firstCapFloats}/${o.buckets.capFloats}` : '';
    return o.overlap || b ? `allreduce(${o.overlap ? 'overlap' : 'after-backward'}${b})` : name;
  }
  if (name === 'ps') return `ps(${o.psReply ?? 'weights'}${o.serverTrains ? ',server-trains' : ''})`;
  return `async-ps(k=${o.pushEvery ?? 1},s=${o.stalenessBound ?? 4}${o.quantize === 'int8' ? ',int8' : ''})`;
}
