import type { TrainObserver } from './records.js';

/** One observer that forwards every event to several. */
export function fanOut(...observers: TrainObserver[]): TrainObserver {
  return {
    onResume: (step, file, rescheduled) => observers.forEach((o) => o.onResume?.(step, file, rescheduled)),
    onStart: (info) => observers.forEach((o) => o.onStart?.(info)),
    onStep: (r) => observers.forEach((o) => o.onStep?.(r)),
    onEval: (r) => observers.forEach((o) => o.onEval?.(r)),
    onSample: (r) => observers.forEach((o) => o.onSample?.(r)),
    onEnd: () => observers.forEach((o) => o.onEnd?.()),
  };
}
