/** Options of how the processes of a cluster combine their work: the strategy and its knobs. */
import { BALANCE_MODELS, CLUSTER_STRATEGIES, COMPRESSIONS, LOAD_BALANCE_POLICIES, PIPELINE_SCHEDULES } from './choices.js';
import { nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber, zeroStage } from './parsers.js';
import { choice, toggle, valued } from './spec.js';

export const STRATEGY_OPTIONS = {
  strategy: choice(CLUSTER_STRATEGIES, {
    arg: '<name>', help: 'allreduce, ps (synchronous parameter server), async-ps, diloco or local-sgd (default allreduce)', forward: true,
    // A cluster_config.yaml without `strategy` describes SmolCluster's parameter server.
    yaml: [{ file: 'cluster', key: 'strategy', read: (v) => (v as (typeof CLUSTER_STRATEGIES)[number] | undefined) ?? 'ps' }],
  }),
  stragglerTimeout: valued({ arg: '<seconds>', help: 'ps: how long after the first gradient of a step the server waits for the rest (default: --timeout)', parse: positiveNumber, forward: true, yaml: [{ file: 'cluster', key: 'timeout' }] }),
  psReply: choice(['weights', 'gradients'] as const, { arg: '<what>', help: 'ps: the server answers with new weights or the averaged gradients (default weights)', forward: true, yaml: [{ file: 'cluster', key: 'ps_reply' }] }),
  serverTrains: toggle({ help: 'ps: the server trains a data shard too', forward: true, yaml: [{ file: 'cluster', key: 'server_trains' }] }),
  pushEvery: valued({ arg: '<k>', help: 'async-ps: push updates every K local steps (cluster_config worker_update_interval; default 1)', parse: positiveInt, forward: true, yaml: [{ file: 'cluster', key: 'worker_update_interval' }] }),
  stalenessBound: valued({ arg: '<s>', help: 'async-ps: a worker more than S versions behind pulls before continuing (default 4)', parse: nonNegativeInt, forward: true, yaml: [{ file: 'cluster', key: 'staleness_bound' }] }),
  quantize: choice(['none', 'int8'] as const, {
    arg: '<how>', help: 'async-ps: int8 pushes with error feedback, or none (default none)', forward: true,
    yaml: [{ file: 'cluster', key: 'use_quantization', read: (v) => (v === undefined ? undefined : v ? 'int8' : 'none') }],
  }),
  pipelineStages: valued({ arg: '<p>', help: 'allreduce: cut the model into P pipeline stages on groups of P workers, placed by measured layer time and memory (data parallel over --workers ÷ P; default 1)', parse: positiveInt, forward: true, yaml: [{ file: 'cluster', key: 'pipeline_stages' }] }),
  microBatches: valued({ arg: '<m>', help: 'pipeline: micro-batches per --batch-size batch (default 4)', parse: positiveInt, forward: true, yaml: [{ file: 'cluster', key: 'micro_batches' }] }),
  pipelineSchedule: choice(PIPELINE_SCHEDULES, { arg: '<name>', help: 'pipeline: gpipe (all forwards, then all backwards) or 1f1b (default 1f1b)', parse: oneOf(PIPELINE_SCHEDULES), forward: true, yaml: [{ file: 'cluster', key: 'pipeline_schedule' }] }),
  zero: valued({
    arg: '<stage>', help: 'allreduce: ZeRO sharding over the workers: 1 optimizer state, 2 also gradients, 3 also parameters (gathered per layer group; docs/PARALLEL.md)',
    parse: zeroStage, forward: true, yaml: [{ file: 'cluster', key: 'zero' }],
  }),
  expertParallel: valued({ arg: '<e>', help: 'allreduce: split each mixture of experts\' experts over groups of E workers (all-to-all dispatch; E divides --workers and the expert count; data parallel over all workers)', parse: positiveInt, forward: true }),
  tensorParallel: valued({ arg: '<t>', help: 'allreduce: split GPT-2/BERT layers over groups of T workers (Megatron tensor parallelism; data parallel over --workers ÷ T; default 1)', parse: positiveInt, forward: true }),
} as const;

/** The gradient exchange of allreduce (buckets, overlap, compression) and of DiLoCo / local SGD. */
export const EXCHANGE_OPTIONS = {
  bucketMb: valued({ arg: '<mb>', help: 'allreduce: gradient bucket cap in MB (default 25, like torch DDP)', parse: positiveNumber, forward: true }),
  firstBucketMb: valued({ arg: '<mb>', help: 'allreduce: cap of the first bucket (the last layers) in MB (default 1)', parse: positiveNumber, forward: true }),
  overlap: toggle({ help: 'allreduce: all-reduce each gradient bucket as soon as backward has produced it', forward: true }),
  compress: choice(COMPRESSIONS, { arg: '<codec>', help: 'allreduce: gradients on the wire as fp16, bf16, int8 (error feedback) or powersgd (default none)', parse: oneOf(COMPRESSIONS), forward: true }),
  powersgdRank: valued({ arg: '<r>', help: 'allreduce --compress powersgd: rank of the factors (default 4)', parse: positiveInt, forward: true }),
  innerSteps: valued({ arg: '<h>', help: 'diloco, local-sgd: local steps between syncs (default 50)', parse: positiveInt, forward: true }),
  outerLr: valued({ arg: '<rate>', help: 'diloco: outer learning rate (default 0.7)', parse: positiveNumber, forward: true }),
  outerMomentum: valued({ arg: '<m>', help: 'diloco: outer Nesterov momentum (default 0.9)', parse: nonNegativeNumber, forward: true }),
} as const;

/** Load balancing (src/balance/) and elastic membership. */
export const MEMBERSHIP_OPTIONS = {
  enableLoadBalancing: toggle({ help: 'allreduce/ps/--elastic: split each global batch (batch size × workers) by measured speed; async-ps: workers claim batches by push cadence (docs/BALANCE.md)', forward: true }),
  loadBalancePolicy: choice(LOAD_BALANCE_POLICIES, { arg: '<name>', help: 'proportional (calibrate once), dynamic (re-decide every K steps from the measured trend) or hybrid (default dynamic)', forward: true }),
  rebalanceInterval: valued({ arg: '<k>', help: 'dynamic/hybrid: re-decide the shares every K steps (default 10)', parse: positiveInt, forward: true }),
  balanceModel: choice(BALANCE_MODELS, {
    arg: '<m>', help: 'shortest: the shortest expected step from each rank\'s measured speed, per-step work and jitter (default); arrival: ranks reach each step\'s barrier together on average, jitter ignored; speed: shares proportional to speed per sample',
    forward: true,
  }),
  elastic: toggle({ help: 'allreduce: survive lost workers and let new ones join (docs/ELASTIC.md)', forward: true }),
  minWorkers: valued({ arg: '<m>', help: 'elastic: stop when fewer than M workers remain (default 1)', parse: positiveInt, forward: true }),
  // The local launcher restarts processes; its workers never see this.
  maxRestarts: valued({ arg: '<r>', help: 'local launcher: restart a failed worker (--elastic), or else the whole cluster from its last checkpoint, up to R times (default 0)', parse: nonNegativeInt, forward: false }),
} as const;
