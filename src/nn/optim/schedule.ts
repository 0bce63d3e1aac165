/**
 * Learning-rate schedules: the LR for a given 0-based step. The decaying ones (cosine, linear,
 * warmup-stable-decay) share a linear warm-up from lr/warmupSteps to lr and end at `minLr`, held
 * there afterwards, as the Hugging Face Trainer's `cosine_with_min_lr` and `warmup_stable_decay` do.
 */
export interface LrSchedule {
  lrAt(step: number): number;
}

export function constantLr(lr: number): LrSchedule {
  return { lrAt: () => lr };
}

/** torch StepLR: lr · gamma^floor(step / stepSize). */
export function stepLr(lr: number, stepSize: number, gamma = 0.1): LrSchedule {
  if (stepSize < 1) throw new Error(`stepLr: stepSize must be >= 1, got ${stepSize}`);
  return { lrAt: (step) => lr * Math.pow(gamma, Math.floor(step / stepSize)) };
}

function checkSpan(name: string, totalSteps: number, warmupSteps: number, lr: number, minLr: number): void {
  if (!(totalSteps >= 1) || !(warmupSteps >= 0) || warmupSteps > totalSteps) {
    throw new Error(`${name}: need 0 <= warmupSteps (${warmupSteps}) <= totalSteps (${totalSteps})`);
  }
  if (!(minLr >= 0) || minLr > lr) throw new Error(`${name}: need 0 <= minLr (${minLr}) <= lr (${lr})`);
}

/** The linear warm-up's LR at `step` (< warmupSteps): lr/warmupSteps at step 0, lr at the last. */
function warmupLr(lr: number, step: number, warmupSteps: number): number {
  return (lr * (step + 1)) / warmupSteps;
}

/**
 * Warm-up over the first `warmupSteps` steps, then `decay(t)` (1 at t = 0 down to 0 at t = 1) of
 * the way from minLr to lr, t running over the rest of the run.
 */
function warmupThenDecay(lr: number, totalSteps: number, warmupSteps: number, minLr: number, decay: (t: number) => number): LrSchedule {
  return {
    lrAt(step) {
      if (step < warmupSteps) return warmupLr(lr, step, warmupSteps);
      const span = Math.max(totalSteps - warmupSteps, 1);
      const t = Math.min((step - warmupSteps) / span, 1);
      return minLr + (lr - minLr) * decay(t);
    },
  };
}

const cosineDecay = (t: number): number => 0.5 * (1 + Math.cos(Math.PI * t));

/** Linear warm-up, then cosine decay to `minLr` at `totalSteps`. */
export function cosineLr(lr: number, totalSteps: number, warmupSteps = 0, minLr = 0): LrSchedule {
  checkSpan('cosineLr', totalSteps, warmupSteps, lr, minLr);
  return warmupThenDecay(lr, totalSteps, warmupSteps, minLr, cosineDecay);
}

/** Linear warm-up, then a straight line down to `minLr` at `totalSteps` (the Trainer's `linear`). */
export function linearLr(lr: number, totalSteps: number, warmupSteps = 0, minLr = 0): LrSchedule {
  checkSpan('linearLr', totalSteps, warmupSteps, lr, minLr);
  return warmupThenDecay(lr, totalSteps, warmupSteps, minLr, (t) => 1 - t);
}

/** Linear warm-up, then lr held (the Trainer's `constant_with_warmup`). */
export function warmupConstantLr(lr: number, totalSteps: number, warmupSteps: number): LrSchedule {
  checkSpan('warmupConstantLr', totalSteps, warmupSteps, lr, 0);
  return warmupThenDecay(lr, totalSteps, warmupSteps, lr, () => 1);
}

/**
 * Warmup-stable-decay: linear warm-up, lr held until the last `decaySteps` steps, then a cosine
 * decay to `minLr` over them (the Trainer's `warmup_stable_decay` with its default cosine decay).
 */
export function wsdLr(lr: number, totalSteps: number, warmupSteps: number, decaySteps: number, minLr = 0): LrSchedule {
  checkSpan('wsdLr', totalSteps, warmupSteps, lr, minLr);
  if (!Number.isInteger(decaySteps) || decaySteps < 0 || warmupSteps + decaySteps > totalSteps) {
    throw new Error(`wsdLr: need 0 <= decaySteps (${decaySteps}) <= totalSteps (${totalSteps}) - warmupSteps (${warmupSteps})`);
  }
  const decayStart = totalSteps - decaySteps;
  return {
    lrAt(step) {
      if (step < warmupSteps) return warmupLr(lr, step, warmupSteps);
      if (step < decayStart || decaySteps === 0) return lr;
      return minLr + (lr - minLr) * cosineDecay(Math.min((step - decayStart) / decaySteps, 1));
    },
  };
}

export type ScheduleName = 'constant' | 'step' | 'cosine' | 'linear' | 'wsd';

export interface ScheduleOptions {
  name: ScheduleName;
  lr: number;
  totalSteps: number;
  /** Linear warm-up steps (every schedule but `step`; default 0). */
  warmupSteps?: number;
  stepSize?: number;
  gamma?: number;
  /** Where cosine, linear and wsd end (default 0). */
  minLr?: number;
  /** wsd's decay phase, the run's last steps (default a fifth of the run; 0: no decay). */
  decaySteps?: number;
}

/** wsd's default decay phase: the last fifth of the run (at least a step), inside what the warm-up leaves. */
function defaultDecaySteps(totalSteps: number, warmupSteps: number): number {
  return Math.min(Math.max(1, Math.round(totalSteps / 5)), totalSteps - warmupSteps);
}

export function makeSchedule(o: ScheduleOptions): LrSchedule {
  const warmup = o.warmupSteps ?? 0;
  switch (o.name) {
    case 'constant': return warmup > 0 ? warmupConstantLr(o.lr, o.totalSteps, warmup) : constantLr(o.lr);
    case 'step': return stepLr(o.lr, o.stepSize ?? Math.max(1, Math.floor(o.totalSteps / 3)), o.gamma);
    case 'cosine': return cosineLr(o.lr, o.totalSteps, warmup, o.minLr);
    case 'linear': return linearLr(o.lr, o.totalSteps, warmup, o.minLr);
    case 'wsd': return wsdLr(o.lr, o.totalSteps, warmup, o.decaySteps ?? defaultDecaySteps(o.totalSteps, warmup), o.minLr);
  }
}
