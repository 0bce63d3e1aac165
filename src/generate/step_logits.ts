/**
 * A decode loop's next-token logits, read into one array of its own each step instead of a fresh
 * copy a step: on the cpu the step's logits are read where they lie (tensor/boundary/host_values.ts),
 * so a step allocates nothing. A copy a step was garbage V8 let pile up: at Qwen2.5's vocabulary
 * (151,936: 608 KB a row) `generate`'s resident peak rose 514 → 525 → 534 → 542 MB at 1, 16, 64
 * and 128 new tokens, and 514 → 519 → 524 → 536 read here (a Q4_K_M file, the AMD EPYC, 2026-11-29).
 */
import { mappedMemory } from '../tensor/boundary/host_values.js';
import type { Tensor } from '../tensor/tensor.js';
import { fromBf16BitsInto } from '../util/float_formats.js';

export class StepLogits {
  private values = new Float32Array(0);

  /**
   * Each row's logits at its last position, of an [N, T, vocab] forward (bfloat16 widened): views of
   * this object's array, which the next read rewrites (read them before the next step).
   */
  async read(logits: Tensor): Promise<Float32Array[]> {
    const [N, T, vocab] = logits.shape;
    if (this.values.length < N * vocab) this.values = new Float32Array(N * vocab);
    const values = mappedMemory(logits.storage) ?? await logits.read();
    return Array.from({ length: N }, (_, n) => {
      const row = this.values.subarray(n * vocab, (n + 1) * vocab);
      const last = values.subarray(((n + 1) * T - 1) * vocab, (n + 1) * T * vocab);
      if (logits.dtype === 'bfloat16') fromBf16BitsInto(last as Uint16Array, row);
      else row.set(last);
      return row;
    });
  }

  /**
   * The next-token logits of a [1, T, vocab] forward: a float32 step's in the cpu's memory read
   * where they lie (the step's own buffer, no copy: the generation's next step rewrites it, so use
   * them before it runs), else read()'s row. The copy (197 KB at SmolLM2-135M's vocabulary) cost a
   * Q4_0 decode 1-3 % a token: 3.05 -> 3.02 and 3.18 -> 3.09 ms, generations alternated in one
   * process (one thread, the AMD EPYC).
   */
  async lastRow(logits: Tensor): Promise<Float32Array> {
    const [N, T, vocab] = logits.shape;
    const mapped = N === 1 && logits.dtype === 'float32' ? mappedMemory(logits.storage) : undefined;
    if (mapped) return (mapped as Float32Array).subarray((T - 1) * vocab, T * vocab);
    return (await this.read(logits))[0];
  }
}
