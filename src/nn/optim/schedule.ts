/** Learning-rate schedules: the LR for a given 0-based step. */
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

/**
 * Linear warm-up from lr/warmupSteps to lr over `warmupSteps`, then cosine decay to `minLr` at
 * `totalSteps` (held there afterwards).
 */
export function cosineLr(lr: number, totalSteps: number, warmupSteps = 0, minLr = 0): LrSchedule {
  if (totalSteps < 1 || warmupSteps < 0 || warmupSteps > totalSteps) {
    throw new Error(`cosineLr: need 0 <= warmupSteps (${warmupSteps}) <= totalSteps (${totalSteps})`);
  }
  return {
    lrAt(step) {
      if (step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
      const span = Math.max(totalSteps - warmupSteps, 1);
      const t = Math.min((step - warmupSteps) / span, 1);
      return minLr + 0.5 * (lr - minLr) * (1 + Math.cos(Math.PI * t));
    },
  };
}

export type ScheduleName = 'constant' | 'step' | 'cosine';

export interface ScheduleOptions {
  name: ScheduleName;
  lr: number;
  totalSteps: number;
  warmupSteps?: number;
  stepSize?: number;
  gamma?: number;
  minLr?: number;
}

export function makeSchedule(o: ScheduleOptions): LrSchedule {
  switch (o.name) {
    case 'constant': return constantLr(o.lr);
    case 'step': return stepLr(o.lr, o.stepSize ?? Math.max(1, Math.floor(o.totalSteps / 3)), o.gamma);
    case 'cosine': return cosineLr(o.lr, o.totalSteps, o.warmupSteps, o.minLr);
  }
}
