import { Rng } from '../../util/rng.js';
import { Flatten, ReLU } from '../layers/activation.js';
import { Conv2d, MaxPool2d } from '../layers/conv.js';
import { Linear } from '../layers/linear.js';
import { Sequential } from '../layers/sequential.js';

export interface CnnSpec {
  type: 'cnn';
  inChannels: number;
  /** Square input side (28 for MNIST). */
  inputSize: number;
  out: number;
}

/** conv 3×3×32 → ReLU → pool 2 → conv 3×3×64 → ReLU → pool 2 → dense 128 → ReLU → dense out. */
export function buildCnn(spec: CnnSpec, seed: number): Sequential {
  const rng = Rng.derive(seed, 0x434e4e);
  const side = Math.floor(Math.floor(spec.inputSize / 2) / 2);
  if (side < 1) throw new Error(`cnn: input size ${spec.inputSize} is too small for two 2×2 poolings`);
  return new Sequential(
    new Conv2d(spec.inChannels, 32, 3, rng, { padding: 1 }),
    new ReLU(),
    new MaxPool2d({ kernel: 2 }),
    new Conv2d(32, 64, 3, rng, { padding: 1 }),
    new ReLU(),
    new MaxPool2d({ kernel: 2 }),
    new Flatten(),
    new Linear(64 * side * side, 128, rng),
    new ReLU(),
    new Linear(128, spec.out, rng),
  );
}
