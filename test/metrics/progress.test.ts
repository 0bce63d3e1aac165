import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Progress } from '../../src/metrics/progress.js';
import { stepFields } from '../../src/metrics/progress_observer.js';

/** A stream that is not a terminal and records what is written to it. */
function fakeStream(isTTY = false): { stream: NodeJS.WriteStream; text: () => string; lines: () => string[] } {
  const chunks: string[] = [];
  const stream = {
    isTTY,
    columns: 100,
    write(chunk: string | Uint8Array): boolean {
      chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    },
    on: () => stream,
    once: () => stream,
    removeListener: () => stream,
  };
  const text = (): string => chunks.join('');
  return { stream: stream as unknown as NodeJS.WriteStream, text, lines: () => text().split('\n').filter((l) => l !== '') };
}

describe('Progress on a non-TTY stream', () => {
  it('prints plain lines — label, value/total, percent, fields — and no escape codes', () => {
    const out = fakeStream();
    const p = new Progress({ label: 'train', total: 4, stream: out.stream, plainEverySeconds: 0 });
    assert.equal(out.text(), '', 'nothing is written before the first update');
    p.update(1, { loss: '2.3000', 'samples/s': '100' });
    p.update(2, { loss: '1.5000', 'samples/s': '120' });
    p.log('step 2: test loss 1.2000, accuracy 60.00%');
    p.update(4, { loss: '0.5000', 'samples/s': '130' });
    p.stop();
    assert.deepEqual(out.lines(), [
      'train 1/4 (25%) loss 2.3000 | samples/s 100',
      'train 2/4 (50%) loss 1.5000 | samples/s 120',
      'step 2: test loss 1.2000, accuracy 60.00%',
      'train 4/4 (100%) loss 0.5000 | samples/s 130',
    ]);
    assert.ok(out.text().endsWith('\n'));
    assert.doesNotMatch(out.text(), /[\r\x1b]/, 'no carriage returns or ANSI escapes in a log');
  });

  it('throttles to one line per period, always printing the first and the final value', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const out = fakeStream();
    const p = new Progress({ label: 'train', total: 100, stream: out.stream, plainEverySeconds: 5 });
    for (let v = 1; v <= 100; v++) {
      p.update(v, { loss: String(v) });
      t.mock.timers.tick(130); // 100 updates over 13 s
    }
    p.stop();
    // Printed at 0 s (v 1), ≥ 5 s (v 40: 39·130 ms = 5.07 s), ≥ 10 s (v 79), and the final value.
    assert.deepEqual(out.lines(), [
      'train 1/100 (1%) loss 1',
      'train 40/100 (40%) loss 40',
      'train 79/100 (79%) loss 79',
      'train 100/100 (100%) loss 100',
    ]);
  });

  it('defaults to a line every 5 seconds: a quick run prints its first and last state only', () => {
    const out = fakeStream();
    const p = new Progress({ label: 'eval', total: 50, stream: out.stream });
    for (let v = 1; v <= 50; v++) p.update(v, { acc: '0.9' });
    p.stop();
    assert.deepEqual(out.lines(), ['eval 1/50 (2%) acc 0.9', 'eval 50/50 (100%) acc 0.9']);
  });

  it('stop() before the end prints where the run stopped, once', () => {
    const out = fakeStream();
    const p = new Progress({ label: 'train', total: 10, stream: out.stream, plainEverySeconds: 3600 });
    p.update(1, { loss: '1' });
    p.update(7, { loss: '0.5' });
    p.stop();
    assert.deepEqual(out.lines(), ['train 1/10 (10%) loss 1', 'train 7/10 (70%) loss 0.5']);

    const again = fakeStream();
    const q = new Progress({ label: 'train', total: 10, stream: again.stream, plainEverySeconds: 3600 });
    q.update(3, { loss: '1' });
    q.stop();
    assert.deepEqual(again.lines(), ['train 3/10 (30%) loss 1'], 'the state already printed is not repeated');
  });

  it('writes to stderr by default, leaving stdout to results', () => {
    const p = new Progress({ label: 'x', total: 1 });
    assert.equal((p as unknown as { stream: unknown }).stream, process.stderr);
  });
});

describe('the training bar\'s fields', () => {
  const record = { step: 3, epoch: 0, rank: 0, loss: 2, samples: 32, lr: 0.02, computeMs: 1, commMs: 0, waitMs: 0, time: 0 };

  it('label the loss as a moving average and show the lr and, when measured, the gradient norm', () => {
    assert.deepEqual(stepFields(1.23456, { ...record, gradNorm: 0.51234 }, 1234.4), {
      'loss (avg 50)': '1.2346', lr: '2.00e-2', 'grad norm': '0.512', 'samples/s': '1234',
    });
    assert.deepEqual(Object.keys(stepFields(1, record, 10)), ['loss (avg 50)', 'lr', 'samples/s'], 'no gradient norm when the loop did not measure one');
  });
});
