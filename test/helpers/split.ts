import type { ClassificationDataset } from '../../src/data/dataset.js';
import type { TrainData } from '../../src/train/loop/loop.js';

/** Splits one synthetic set (its class means depend on its seed) into the first `trainSize` samples and the rest. */
export function splitTrainTest(d: ClassificationDataset, trainSize: number): TrainData {
  const dim = d.inputs.length / d.size;
  const part = (from: number, to: number, name: string): ClassificationDataset => ({
    ...d, name, size: to - from, inputs: d.inputs.slice(from * dim, to * dim), labels: d.labels.slice(from, to),
  });
  return { train: part(0, trainSize, 'train'), test: part(trainSize, d.size, 'test') };
}
