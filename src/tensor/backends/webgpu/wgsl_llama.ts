import type { KernelSpec } from './stream.js';
import { ELEM, ROW } from './wgsl_elementwise.js';
import { REDUCE64 } from './wgsl_reduce.js';

/**
 * WGSL of the Llama family's kernels (backend.ts): RMSNorm and its backward (one workgroup per row,
 * or per column for the weight's gradient), rotary embeddings (one invocation per rotated pair) and
 * the SiLU-gated product (one invocation per element).
 */

export const rmsNorm: KernelSpec = {
  name: 'rmsNorm', bufs: ['x', 'weight', 'y', 'invRms'], params: [['rows', 'u'], ['cols', 'u'], ['eps', 'f']],
  body: `${REDUCE64}
${ROW}
  if (row >= P_rows()) { return; }
  let off = row * P_cols(); let n = P_cols();
  var q = 0.0;
  for (var j = li; j < n; j += 64u) { let v = x_at(off + j); q += v * v; }
  let inv = 1.0 / sqrt(wg_sum(li, q) / f32(n) + P_eps());
  for (var j = li; j < n; j += 64u) { y_set(off + j, x_at(off + j) * inv * weight_at(j)); }
  if (li == 0u) { invRms_set(row, inv); }
}`,
};

/** gx += invRms · (gy·w − x̂ · mean(gy·w·x̂)) per row. */
export const rmsNormGradInput: KernelSpec = {
  name: 'rmsNormGradInput', bufs: ['x', 'weight', 'invRms', 'gy', 'gx'], params: [['rows', 'u'], ['cols', 'u']],
  body: `${REDUCE64}
${ROW}
  if (row >= P_rows()) { return; }
  let off = row * P_cols(); let n = P_cols();
  let inv = invRms_at(row);
  var d = 0.0;
  for (var j = li; j < n; j += 64u) { d += gy_at(off + j) * weight_at(j) * x_at(off + j) * inv; }
  let along = wg_sum(li, d) / f32(n);
  for (var j = li; j < n; j += 64u) {
    let xhat = x_at(off + j) * inv;
    gx_inc(off + j, inv * (gy_at(off + j) * weight_at(j) - xhat * along));
  }
}`,
};

/** Per column j: gWeight[j] += Σ_r gy·x̂. */
export const rmsNormGradWeight: KernelSpec = {
  name: 'rmsNormGradWeight', bufs: ['x', 'invRms', 'gy', 'gWeight'], params: [['rows', 'u'], ['cols', 'u']],
  body: `${REDUCE64}
${ROW}
  if (row >= P_cols()) { return; }
  var s = 0.0;
  for (var r = li; r < P_rows(); r += 64u) {
    let at = r * P_cols() + row;
    s += gy_at(at) * x_at(at) * invRms_at(r);
  }
  let total = wg_sum(li, s);
  if (li == 0u) { gWeight_inc(row, total); }
}`,
};

/**
 * One rotated pair (i, i + h) of a row of x [slices, t, 2h] per invocation, by sign·angle(t, i):
 * sign 1 is the forward (y written), −1 the backward (y accumulated: a rotation's transpose).
 */
export const rotary: KernelSpec = {
  name: 'rotary', bufs: ['x', 'cos', 'sin', 'y'], params: [['n', 'u'], ['t', 'u'], ['h', 'u'], ['sign', 'f'], ['accumulate', 'u']],
  body: `${ELEM('P_n()')}
  let h = P_h();
  let row = i / h; let k = i % h;
  let angle = (row % P_t()) * h + k;
  let c = cos_at(angle); let s = P_sign() * sin_at(angle);
  let lo = row * 2u * h + k; let hi = lo + h;
  let a = x_at(lo); let b = x_at(hi);
  if (P_accumulate() == 1u) { y_inc(lo, a * c - b * s); y_inc(hi, b * c + a * s); }
  else { y_set(lo, a * c - b * s); y_set(hi, b * c + a * s); }
}`,
};

export const siluMul: KernelSpec = {
  name: 'siluMul', bufs: ['gate', 'up', 'y'], params: [['n', 'u']],
  body: `${ELEM('P_n()')}
  let g = gate_at(i);
  y_set(i, g / (1.0 + exp(-g)) * up_at(i));
}`,
};

/** gGate += gy·up·s·(1 + gate·(1 − s)), gUp += gy·gate·s with s = sigmoid(gate); a flag off skips one. */
export const siluMulBackward: KernelSpec = {
  name: 'siluMulBackward', bufs: ['gate', 'up', 'gy', 'gGate', 'gUp'], params: [['n', 'u'], ['hasGate', 'u'], ['hasUp', 'u']],
  body: `${ELEM('P_n()')}
  let g = gate_at(i);
  let s = 1.0 / (1.0 + exp(-g));
  let dy = gy_at(i);
  if (P_hasGate() == 1u) { gGate_inc(i, dy * up_at(i) * s * (1.0 + g * (1.0 - s))); }
  if (P_hasUp() == 1u) { gUp_inc(i, dy * g * s); }
}`,
};
