/**
 * Pipeline schedules as pure action lists: for stage `stage` of `stages`, the order in which it runs
 * the forward and backward passes of its `micro` micro-batches. An executor walks the list, receiving
 * activations (forward) or their gradients (backward) from the neighbouring stage point to point.
 * Every stage runs the backwards in micro-batch order 0..M-1, so each pair of neighbours sends and
 * receives the messages of one direction in the same order.
 */
export type PipelineScheduleName = 'gpipe' | '1f1b';

export interface PipelineAction {
  kind: 'forward' | 'backward';
  micro: number;
}

/** GPipe: every forward, then every backward; a stage holds all M micro-batches' activations. */
export function gpipeSchedule(stage: number, stages: number, micro: number): PipelineAction[] {
  checkShape(stage, stages, micro);
  const out: PipelineAction[] = [];
  for (let m = 0; m < micro; m++) out.push({ kind: 'forward', micro: m });
  for (let m = 0; m < micro; m++) out.push({ kind: 'backward', micro: m });
  return out;
}

/**
 * 1F1B (PipeDream-flush): a warm-up of min(P-1-s, M) forwards, then one forward and one backward in
 * turn while forwards remain, then the remaining backwards (cool-down). Stage s holds at most
 * min(P-s, M) micro-batches of activations, so stage 0 at most P.
 */
export function oneFOneBSchedule(stage: number, stages: number, micro: number): PipelineAction[] {
  checkShape(stage, stages, micro);
  const warmup = Math.min(stages - 1 - stage, micro);
  const out: PipelineAction[] = [];
  let f = 0;
  let b = 0;
  while (f < warmup) out.push({ kind: 'forward', micro: f++ });
  while (f < micro) {
    out.push({ kind: 'forward', micro: f++ });
    out.push({ kind: 'backward', micro: b++ });
  }
  while (b < micro) out.push({ kind: 'backward', micro: b++ });
  return out;
}

export function pipelineSchedule(name: PipelineScheduleName, stage: number, stages: number, micro: number): PipelineAction[] {
  if (name === 'gpipe') return gpipeSchedule(stage, stages, micro);
  if (name === '1f1b') return oneFOneBSchedule(stage, stages, micro);
  throw new RangeError(`--pipeline-schedule must be gpipe or 1f1b, got '${String(name)}'`);
}

/** The most micro-batches whose activations a stage holds at once while it runs `actions`. */
export function peakLiveActivations(actions: readonly PipelineAction[]): number {
  let live = 0;
  let peak = 0;
  for (const a of actions) {
    live += a.kind === 'forward' ? 1 : -1;
    peak = Math.max(peak, live);
  }
  return peak;
}

/** The ideal bubble fraction of a synchronous schedule (GPipe and 1F1B alike): (P-1)/(M+P-1). */
export function idealBubbleFraction(stages: number, micro: number): number {
  return (stages - 1) / (micro + stages - 1);
}

function checkShape(stage: number, stages: number, micro: number): void {
  if (!Number.isInteger(stages) || stages < 1) throw new RangeError(`--pipeline-stages must be a positive integer, got ${stages}`);
  if (!Number.isInteger(micro) || micro < 1) throw new RangeError(`--micro-batches must be a positive integer, got ${micro}`);
  if (!Number.isInteger(stage) || stage < 0 || stage >= stages) throw new RangeError(`pipeline stage ${stage} is not one of 0..${stages - 1}`);
}
