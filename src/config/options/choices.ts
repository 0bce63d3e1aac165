/**
 * The closed sets of values some options take. They are defined here, below the layers that act on
 * them (train/strategies, balance/), so that one option table can name them; those layers
 * re-export them under their old names.
 */
import type { PrecisionChoice } from '../../tensor/precision.js';

/** How the processes of a cluster combine their work (train/strategies/registry.ts). */
export const CLUSTER_STRATEGIES = ['allreduce', 'ps', 'async-ps', 'diloco', 'local-sgd'] as const;
export type ClusterStrategyName = (typeof CLUSTER_STRATEGIES)[number];

/** allreduce: the gradients' encoding on the wire (train/strategies/allreduce.ts). */
export const COMPRESSIONS = ['none', 'fp16', 'bf16', 'int8', 'powersgd'] as const;
export type Compression = (typeof COMPRESSIONS)[number];
/** Pipeline schedules (parallel/pipeline/schedule.ts). */
export const PIPELINE_SCHEDULES = ['gpipe', '1f1b'] as const;

/** How the balancer models a rank's step (balance/policy.ts). */
export const BALANCE_MODELS = ['arrival', 'shortest', 'speed'] as const;
export type BalanceModel = (typeof BALANCE_MODELS)[number];

/**
 * The communication backend: `auto` links ranks on one host through shared memory (comm/shm/) and
 * every other pair over TCP; `tcp` keeps every link on TCP (as SMOLCLUSTER_SHM=0 does).
 */
export const COMM_BACKENDS = ['auto', 'tcp'] as const;
export type CommBackend = (typeof COMM_BACKENDS)[number];

/**
 * The compute precision a run asks for (tensor/precision.ts; docs/PRECISION.md): fp32, bf16 on the
 * CPU's matrix units, or auto (bf16 where the CPU has bf16 instructions and a start-up measurement
 * finds it faster, train/engine/precision_auto.ts).
 */
export const PRECISION_CHOICES = ['fp32', 'bf16', 'auto'] as const satisfies readonly PrecisionChoice[];

/** The dtypes `--save x.safetensors` writes floating-point tensors in (nn/interchange/safetensors.ts). */
export const SAVE_DTYPES = ['fp32', 'bf16', 'f16'] as const;

/** Where a process trains (train/engine/device.ts): the cpu, a WebGPU adapter, or whichever a measurement finds faster. */
export const DEVICE_CHOICES = ['cpu', 'gpu', 'auto'] as const;
export type DeviceChoice = (typeof DEVICE_CHOICES)[number];

export const OPTIMIZERS = ['sgd', 'adam', 'adamw'] as const;
export const SCHEDULES = ['constant', 'step', 'cosine', 'linear', 'wsd'] as const;
export const LOAD_BALANCE_POLICIES = ['proportional', 'dynamic', 'hybrid'] as const;

/** --quantize: the weight formats a model is held in at load. */
export { QUANT_SCHEMES, type QuantScheme } from '../../nn/quantize_model.js';
