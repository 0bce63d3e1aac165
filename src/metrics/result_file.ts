/**
 * result.json, version 1 (docs/RESULT.md). Snake_case keys, as the rest of the ecosystem writes them.
 * Defined here, below the training loop, so that readers (the dashboard, validate) and the writer
 * (train/run/result.ts) share one shape without the metrics layer importing train/.
 */
export interface ResultFile<C = Record<string, unknown>> {
  schema: 'smolcluster-train-result';
  schema_version: 1;
  model: string;
  parameters: number;
  final_loss: number;
  test_loss: number | null;
  test_accuracy: number | null;
  /** exp(test_loss) for the token tasks (language-model, masked-lm); absent otherwise. */
  test_perplexity?: number;
  /** Training samples per second across the whole run, training steps only (evaluation excluded). */
  samples_per_sec: number;
  /** Token tasks: samples_per_sec × the training window. */
  tokens_per_sec?: number;
  /**
   * GPT-2 and the Llama family on the cpu: model FLOPs utilisation — tokens_per_sec × training FLOPs
   * per token (src/nn/models/flops.ts) over the trainers' GEMM peak (the leader's, probed after
   * training at its thread count and precision, times the trainers).
   */
  mfu?: { value: number; flops_per_token: number; gemm_peak_gflops: number; precision: 'fp32' | 'bf16' };
  /** --save-best, early stopping: the evaluation of the lowest loss, its step and the model kept of it (best/model.smol). */
  best?: { step: number; eval_loss: number; file: string };
  /** --early-stopping-patience ended the run after the evaluation at this step. */
  stopped_early?: { step: number; patience: number };
  /** The run's optimizer steps, a resumed run's counted from its start. */
  steps: number;
  /** A resumed run: the step of the checkpoint it continued from (steps − resumed_from were taken in this process). */
  resumed_from?: number;
  wall_seconds: number;
  train_seconds: number;
  totals_ms: { compute: number; comm: number; wait: number };
  /** Processes that trained (1 for a single process; a parameter server that only aggregates is not one). */
  workers: number;
  /** All processes of the run, a parameter server included (absent in files written before it). */
  world_size?: number;
  strategy: string;
  /** Per-rank totals, measured by each rank in its own steps. */
  per_rank: RankTotals[];
  backend: string;
  threads: number;
  /** Where the leader trained: cpu or webgpu (--device; per rank in per_rank; absent in files written before it: cpu). */
  device?: string;
  /** The compute precision every rank trained in (docs/PRECISION.md; absent in files written before it: fp32). */
  precision?: 'fp32' | 'bf16';
  /** Present when --precision auto chose it: what it found and measured (rank 0's, for every rank). */
  precision_auto?: { chose: 'fp32' | 'bf16'; instructions: string[]; fp32_ms: number | null; bf16_ms: number | null; reason: string };
  started_at: string;
  ended_at: string;
  host: { hostname: string; platform: string; arch: string; cpus: number; node: string };
  /** The run's configuration (train/run/config.ts's TrainConfig when this package wrote it). */
  config: C;
}

export interface RankTotals {
  rank: number;
  samples: number;
  train_seconds: number;
  compute_ms: number;
  comm_ms: number;
  wait_ms: number;
  /** Time in evaluations during the run (the evaluating rank's; absent in files written before it). */
  eval_ms?: number;
  /** Waits in the steps right after those evaluations (absent in files written before it). */
  after_eval_wait_ms?: number;
  /** Where the rank trained: cpu or webgpu (absent in files written before it: cpu). */
  device?: string;
}

