/**
 * Shared fixtures of the optimizer tests (a helper, not a test file: the name matches none of
 * node's test-file patterns).
 */
import { ParamArena } from '../../../src/nn/arena.js';
import { Tensor } from '../../../src/tensor/tensor.js';

/** The parameters and per-step gradients / learning rates the torch references were made with. */
export const P0 = [0.5, -1.25, 2.0, 0.0];
export const GRADS = [[0.1, -0.2, 0.3, -0.4], [0.05, 0.5, -0.25, 0.0], [-0.3, 0.1, 0.2, 0.7]];
export const LRS = [0.1, 0.05, 0.2];

/**
 * An arena of two parameters (P0 split 3 + 1), so a per-parameter mistake (e.g. state indexed by
 * tensor rather than by arena position) would show.
 */
export function arenaOf(values: number[] = P0): ParamArena {
  return ParamArena.pack([
    ['a', Tensor.from(values.slice(0, 3), [3])],
    ['b', Tensor.from(values.slice(3), [values.length - 3])],
  ]);
}

/** Float32 results against float64 expectations: a few float32 ulps. */
export const F32 = { rtol: 2e-6, atol: 1e-7 };

/** Adam in float32 against torch: both backends form 1 − β in double, as torch does. */
export const ADAM_F32 = F32;
