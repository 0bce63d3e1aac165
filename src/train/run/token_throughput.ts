/**
 * What a language-model run's summary needs beyond samples/s: tokens per sample (the training
 * window) and, for the models whose FLOPs per token are known (GPT-2, the Llama family) on the cpu,
 * a short probe of this core's GEMM peak in the run's precision — MFU's yardstick. The probe runs
 * after training, on the leader only (~0.2 s).
 */
import type { Dataset } from '../../data/dataset.js';
import { type ModelSpec, isTokenModel } from '../../nn/models/index.js';
import { trainingFlopsPerToken } from '../../nn/models/flops.js';
import type { BackendInfo } from '../../tensor/backend.js';
import { measureGemmPeak } from '../../tensor/gemm_peak.js';
import type { TrainConfig } from './config.js';

export interface TokenThroughputInfo {
  tokensPerSample?: number;
  gemmPeakGflops?: number;
}

/** One 1024³ product over ~150 ms: enough for the order of MFU, not for a benchmark's peak. */
const PROBE = { shapes: [1024], budgetMs: 150 };

export function tokenThroughputInfo(config: TrainConfig, spec: ModelSpec, train: Dataset, kernels: BackendInfo & { readonly bfloat16?: unknown }): TokenThroughputInfo {
  if (!isTokenModel(config.model)) return {};
  const tokensPerSample = train.inputShape[0];
  const dtype = config.precision === 'bf16' ? 'bf16' : 'fp32';
  // The probe times the cpu backend's GEMM: the yardstick only of a run that computes on it.
  const onProbedBackend = (config.device ?? kernels.device) === kernels.device;
  const measurable = onProbedBackend && trainingFlopsPerToken(spec, tokensPerSample) !== null && (dtype === 'fp32' || kernels.bfloat16 !== undefined);
  if (!measurable) return { tokensPerSample };
  return { tokensPerSample, gemmPeakGflops: measureGemmPeak(kernels, dtype, PROBE.shapes, PROBE.budgetMs).gflops };
}
