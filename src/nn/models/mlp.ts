import { Rng } from '../../util/rng.js';
import { Flatten, ReLU } from '../layers/activation.js';
import { Linear } from '../layers/linear.js';
import { Sequential } from '../layers/sequential.js';
import type { Module } from '../module.js';

export interface MlpSpec {
  type: 'mlp';
  inputDim: number;
  /** One hidden width or a list of them (SmolCluster's SimpleNN `hidden`). */
  hidden: number | number[];
  out: number;
}

/** SmolCluster's SimpleNN: flatten → (Linear → ReLU) per hidden width → Linear. */
export function buildMlp(spec: MlpSpec, seed: number): Sequential {
  const rng = Rng.derive(seed, 0x4d4c50);
  const widths = typeof spec.hidden === 'number' ? [spec.hidden] : spec.hidden;
  const layers: Module[] = [new Flatten()];
  let prev = spec.inputDim;
  for (const w of widths) {
    layers.push(new Linear(prev, w, rng), new ReLU());
    prev = w;
  }
  layers.push(new Linear(prev, spec.out, rng));
  return new Sequential(...layers);
}
