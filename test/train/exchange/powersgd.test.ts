import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import type { ArenaEntry } from '../../../src/nn/arena.js';
import { orthonormalize, PowerSgd } from '../../../src/train/exchange/powersgd.js';

const entries: ArenaEntry[] = [
  { name: 'w', shape: [20, 30], offset: 0, size: 600, decay: true },
  { name: 'b', shape: [20], offset: 600, size: 20, decay: false },
];
const bucket = { start: 0, end: 620, entries: [0, 1] };

/** Rank r's gradient: a rank-1 matrix u_r v_rᵀ and a bias vector. */
function gradient(r: number): Float32Array {
  const g = new Float32Array(620);
  for (let i = 0; i < 20; i++) for (let j = 0; j < 30; j++) g[i * 30 + j] = Math.sin(i * (r + 1) + 0.3) * Math.cos(j * (r + 2) - 0.1);
  for (let i = 0; i < 20; i++) g[600 + i] = i * (r + 1) * 0.01;
  return g;
}

describe('PowerSGD', () => {
  it('a sum of rank-1 gradients is recovered at rank 2; biases are summed exactly; fewer floats on the wire', async () => {
    const transports = createInProcessTransports(2, { timeoutMs: 5000 });
    const groups = transports.map((t) => new ProcessGroup(t, { timeoutMs: 5000 }));
    const psgd = groups.map(() => new PowerSgd(entries, 2, 620));
    const grads = [gradient(0), gradient(1)];
    const exact = grads[0].map((x, i) => x + grads[1][i]);
    await Promise.all(groups.map((g, r) => psgd[r].allReduce(g, grads[r], bucket)));
    assert.deepEqual(grads[0], grads[1], 'every rank holds the same bits');
    const scale = Math.max(...exact.map(Math.abs));
    for (let i = 0; i < 600; i++) assert.ok(Math.abs(grads[0][i] - exact[i]) <= 1e-4 * scale, `[${i}] ${grads[0][i]} vs ${exact[i]}`);
    for (let i = 600; i < 620; i++) assert.equal(grads[0][i], Math.fround(exact[i]));
    assert.equal(psgd[0].floatsFor(bucket), (20 + 30) * 2 + 20);
    assert.equal(transports[0].bytesSent, 4 * psgd[0].floatsFor(bucket), 'P and biases, then Q (2 ranks: one message each)');
  });

  it('at rank 1 a rank-2 sum is not recovered at once, and error feedback carries the rest into the next step', async () => {
    const transports = createInProcessTransports(2, { timeoutMs: 5000 });
    const groups = transports.map((t) => new ProcessGroup(t, { timeoutMs: 5000 }));
    const psgd = groups.map(() => new PowerSgd(entries, 1, 620));
    const total = new Float64Array(620);
    const steps = 30;
    for (let s = 0; s < steps; s++) {
      const grads = [gradient(0), gradient(1)];
      await Promise.all(groups.map((g, r) => psgd[r].allReduce(g, grads[r], bucket)));
      if (s === 0) {
        const exact = gradient(0).map((x, i) => x + gradient(1)[i]);
        assert.ok(Math.max(...exact.subarray(0, 600).map((x, i) => Math.abs(x - grads[0][i]))) > 0.05, 'one step at rank 1 loses a direction');
      }
      grads[0].forEach((x, i) => (total[i] += x));
    }
    // Averaged over steps, what was sent converges on the true gradient (error feedback).
    const exact = gradient(0).map((x, i) => x + gradient(1)[i]);
    const err = Math.max(...exact.subarray(0, 600).map((x, i) => Math.abs(total[i] / steps - x)));
    assert.ok(err < 0.2 * Math.max(...exact.map(Math.abs)), `mean over ${steps} steps is off by ${err}`);
  });

  it('orthonormalize gives orthonormal columns and zeroes a dependent one', () => {
    const p = Float32Array.from([1, 2, 2, 4, 0, 0, 3, 6]); // 4 × 2, column 2 = 2 · column 1
    orthonormalize(p, 4, 2);
    const col = (k: number): number[] => [0, 1, 2, 3].map((i) => p[i * 2 + k]);
    assert.ok(Math.abs(col(0).reduce((s, x) => s + x * x, 0) - 1) < 1e-6);
    assert.ok(col(1).every((x) => Math.abs(x) < 1e-6));
  });
});
