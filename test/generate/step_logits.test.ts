/**
 * StepLogits: the decode loop's next-token logits. read() copies each row's last position into an
 * array of its own; lastRow() reads a float32 step's where they lie (the step's buffer, no copy)
 * and a bf16 step's widened.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StepLogits } from '../../src/generate/step_logits.js';
import { mappedMemory } from '../../src/tensor/boundary/host_values.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { toBf16Bits } from '../../src/util/float_formats.js';

const VOCAB = 5;
/** [N, T, VOCAB] logits valued 100·n + 10·t + v. */
function logitsOf(N: number, T: number): Float32Array {
  return Float32Array.from({ length: N * T * VOCAB }, (_, i) => 100 * Math.floor(i / (T * VOCAB)) + 10 * (Math.floor(i / VOCAB) % T) + (i % VOCAB));
}

test('lastRow: a float32 step\'s last position, read where it lies (no copy)', async () => {
  const logits = Tensor.from(logitsOf(1, 3), [1, 3, VOCAB]);
  const row = await new StepLogits().lastRow(logits);
  assert.deepEqual([...row], [20, 21, 22, 23, 24]);
  mappedMemory(logits.storage)![2 * VOCAB] = -1;
  assert.equal(row[0], -1, 'the row is the step buffer\'s memory');
});

test('lastRow: a bf16 step\'s last position widened, in the reader\'s own array', async () => {
  const values = logitsOf(1, 2);
  const logits = Tensor.from(Uint16Array.from(values, (v) => toBf16Bits(v)), [1, 2, VOCAB], 'bfloat16');
  const row = await new StepLogits().lastRow(logits);
  assert.deepEqual([...row], [10, 11, 12, 13, 14]);
  mappedMemory(logits.storage)![VOCAB] = 0;
  assert.equal(row[0], 10, 'widened into a copy');
});

test('read: each row\'s last position copied into one array the next read rewrites', async () => {
  const reader = new StepLogits();
  const logits = Tensor.from(logitsOf(2, 2), [2, 2, VOCAB]);
  const [a, b] = await reader.read(logits);
  assert.deepEqual([...a], [10, 11, 12, 13, 14]);
  assert.deepEqual([...b], [110, 111, 112, 113, 114]);
  mappedMemory(logits.storage)![VOCAB] = -1;
  assert.equal(a[0], 10, 'a copy');
  const [c] = await reader.read(Tensor.from(logitsOf(2, 1), [2, 1, VOCAB]));
  assert.equal(c.buffer, a.buffer, 'the same array, rewritten');
  assert.equal(a[0], 0);
});
