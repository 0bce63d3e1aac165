/**
 * Where each pipeline stage's layers come from: every rank's measured layer times (layer_cost.ts)
 * and memory, gathered, turned into the planner's nodes (stage_plan.ts). Every rank computes the
 * same plan from the same gathered table.
 *
 * - Reference times: each layer's median over the ranks.
 * - A rank's speed: Σ reference ms / Σ its own ms (a rank under a CPU quota of a third measures ≈3×
 *   the times: speed ≈ 1/3).
 * - A stage's node: every rank holding that stage (one per data-parallel replica); the slowest
 *   paces the stage and the smallest memory bounds it.
 * - A layer's bytes: its parameters × bytes of model state per parameter (weights, gradients,
 *   optimizer state) plus its output activation × the micro-batches alive at once.
 */
import { type StageNode, type StagePlan, planStages } from './stage_plan.js';

export interface RankMeasure {
  /** Forward+backward ms of each layer on this rank. */
  layerMs: number[];
  /** Bytes this rank can give its layers. */
  memoryBytes: number;
}

export interface PlacementInput {
  ranks: RankMeasure[];
  stages: number;
  /** Stage of each rank (rank r holds stage stageOf[r]). */
  stageOf: number[];
  parameters: number[];
  activationFloats: number[];
  /** Model-state bytes per parameter: 4 weights + 4 gradients + the optimizer's (Adam 8). */
  bytesPerParameter: number;
  /** Micro-batches whose activations a stage holds at once (GPipe M, 1F1B at most P). */
  liveMicroBatches: number;
}

export interface Placement extends StagePlan {
  /** The reference per-layer ms (median over the ranks). */
  layerMs: number[];
  /** Each rank's speed relative to the reference. */
  rankSpeed: number[];
  /** Each stage's node: the slowest speed and smallest memory of its ranks. */
  nodes: StageNode[];
  layerBytes: number[];
}

export function placeStages(p: PlacementInput): Placement {
  const L = p.parameters.length;
  p.ranks.forEach((r, i) => {
    if (r.layerMs.length !== L) throw new RangeError(`rank ${i} measured ${r.layerMs.length} layers, the model has ${L}`);
  });
  const layerMs = Array.from({ length: L }, (_, l) => median(p.ranks.map((r) => r.layerMs[l])));
  const total = layerMs.reduce((a, b) => a + b, 0);
  const rankSpeed = p.ranks.map((r) => total / Math.max(1e-9, r.layerMs.reduce((a, b) => a + b, 0)));
  const nodes: StageNode[] = Array.from({ length: p.stages }, (_, s) => {
    const members = p.stageOf.flatMap((stage, r) => (stage === s ? [r] : []));
    if (members.length === 0) throw new RangeError(`pipeline stage ${s} has no rank`);
    return {
      speed: Math.min(...members.map((r) => rankSpeed[r])),
      memoryBytes: Math.min(...members.map((r) => p.ranks[r].memoryBytes)),
    };
  });
  const layerBytes = p.parameters.map((n, l) => n * p.bytesPerParameter + p.activationFloats[l] * 4 * p.liveMicroBatches);
  return { ...planStages(layerMs, nodes, layerBytes), layerMs, rankSpeed, nodes, layerBytes };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
