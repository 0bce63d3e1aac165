import type { StepRecord } from './records.js';

/**
 * Samples the cluster trained in one step, as the rank recording it saw the step. A parameter
 * server trains nothing itself and reports what its workers trained (`info.trained_samples`);
 * otherwise the training ranks step together, so this rank's samples × their number.
 */
export function clusterSamples(r: StepRecord, trainers: number): number {
  const reported = r.info?.trained_samples;
  return typeof reported === 'number' ? reported : r.samples * trainers;
}
