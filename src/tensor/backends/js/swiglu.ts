import type { Buf } from '../../backend.js';

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

/** out[i] = silu(gate[i]) · up[i]: the SwiGLU MLP's gated product. */
export function siluMul(gate: Buf, up: Buf, out: Buf): void {
  for (let i = 0; i < out.length; i++) {
    const g = gate[i];
    out[i] = g * sigmoid(g) * up[i];
  }
}

/** Backward of siluMul from its inputs: silu(gate) and its derivative are recomputed, never stored. */
export function siluMulBackward(gate: Buf, up: Buf, gy: Buf, gGate: Buf | null, gUp: Buf | null): void {
  for (let i = 0; i < gy.length; i++) {
    const g = gate[i];
    const s = sigmoid(g);
    if (gGate) gGate[i] += gy[i] * up[i] * s * (1 + g * (1 - s));
    if (gUp) gUp[i] += gy[i] * g * s;
  }
}
