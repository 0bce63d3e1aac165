/**
 * Whether a pipeline's stages can hold the model at all, known before any stage probes its speed or
 * loads a weight (issue 50: a 70B model over `--stages 2` hung until killed). The need is the whole
 * model's as its stages hold it (generate/inference_memory.ts: each weight in its stage's format,
 * parallel/pipeline/stage_weights.ts; the KV cache of --max-batch rows; the activations) and a
 * runtime per process; a stage loads one parameter at a time, so there is no loading peak. The
 * memory is each host's once: stages started here share this machine's.
 */
import { type InferenceMemory, InsufficientMemoryError, RUNTIME_BYTES, describeInferenceMemory, estimateInferenceMemory, gb } from '../../generate/inference_memory.js';
import type { ModelSpec } from '../../nn/models/index.js';
import { deferredModel } from '../../parallel/pipeline/stage_model.js';
import { type StageWeights, heldFormats } from '../../parallel/pipeline/stage_weights.js';
import type { Precision } from '../../tensor/precision.js';

/** What `stages` processes holding the model between them need together, and that total. */
export function stagesNeed(spec: ModelSpec, weights: StageWeights, o: { stages: number; maxBatch: number; precision?: Precision }): { need: InferenceMemory; total: number } {
  const whole = deferredModel(spec, null);
  const formats = heldFormats(spec, whole, weights);
  const need = estimateInferenceMemory(spec, { formats, precision: o.precision, rows: o.maxBatch }, whole.namedParameters().map(([n, p]) => [n, p.shape]));
  return { need, total: need.generating + (o.stages - 1) * RUNTIME_BYTES };
}

/** One rank's memory as it reported it, and its host (ranks on one host share its memory). */
export interface RankMemory {
  rank: number;
  /** Equal for the ranks of one host. */
  host: string;
  /** Where this rank sees it, for the message. */
  where: string;
  bytes: number;
}

/** Refuses, naming the need and every rank's memory, when the hosts' memory (each counted once) cannot hold the stages. */
export function checkStagesMemory(need: { need: InferenceMemory; total: number }, ranks: readonly RankMemory[]): void {
  const byHost = new Map<string, number>();
  for (const r of ranks) byHost.set(r.host, Math.min(byHost.get(r.host) ?? Infinity, r.bytes));
  const available = [...byHost.values()].reduce((a, b) => a + b, 0);
  if (need.total <= available) return;
  const each = ranks.map((r) => `rank ${r.rank} at ${r.where}: ${gb(r.bytes)}`).join(', ');
  const hosts = byHost.size === 1 ? `the ${ranks.length} stages share one host's ${gb(available)}` : `the stages' ${byHost.size} hosts have ${gb(available)} together`;
  throw new InsufficientMemoryError(need.need, available,
    `the model needs ${describeInferenceMemory(need.need, false)}, ${gb(need.total)} over ${ranks.length} stage processes; ${hosts} (${each}). Ways out: more stages on other hosts (--stage-master), a 4-bit file, or a smaller --max-batch`);
}
