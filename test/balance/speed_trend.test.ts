import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpeedTrend } from '../../src/balance/speed_trend.js';

const win = (samples: number, scaledMs: number, fixedMs = 0, noiseMs = 0) => ({ samples, scaledMs, fixedMs, noiseMs });

describe('SpeedTrend', () => {
  it('one share seen: the ratio, all of it per sample', () => {
    const t = new SpeedTrend();
    t.fold(win(32, 8 + 32, 5));
    assert.equal(t.msPerSample, 40 / 32);
    assert.equal(t.overheadMs, 0);
    assert.equal(t.fixedMs, 5);
  });

  it('shares far enough apart: the per-step overhead is told from the cost per sample', () => {
    // 8 ms per step whatever the share, 1 ms per sample: the ratio would say 1.25, then 1.5 ms per sample.
    const t = new SpeedTrend();
    t.fold(win(32, 8 + 32));
    t.fold(win(16, 8 + 16));
    assert.equal(t.overheadMs, 0, 'two windows: no line yet');
    t.fold(win(24, 8 + 24));
    assert.ok(Math.abs(t.msPerSample - 1) < 1e-9 && Math.abs(t.overheadMs - 8) < 1e-9, `${t.msPerSample} + ${t.overheadMs}`);
    // Shares 20 % apart or less are not enough to fit a line.
    const close = new SpeedTrend();
    close.fold(win(32, 40));
    close.fold(win(28, 36));
    close.fold(win(30, 38));
    assert.equal(close.overheadMs, 0);
  });

  it('windows the line does not explain (noise): the ratio', () => {
    const t = new SpeedTrend();
    // The slopes between these disagree wildly; a fitted line would call most of the time overhead.
    t.fold(win(32, 40, 0, 6));
    t.fold(win(16, 30, 0, 6));
    t.fold(win(24, 22, 0, 6));
    assert.equal(t.overheadMs, 0);
  });

  it('a window far from the prediction starts afresh: the node\'s speed changed', () => {
    const t = new SpeedTrend();
    t.fold(win(32, 40));
    t.fold(win(16, 24));
    t.fold(win(16, 3 * 24, 0, 2));
    assert.equal(t.msPerSample, 3 * 24 / 16);
    assert.equal(t.overheadMs, 0);
  });

  it('a departure within the window\'s noise is averaged in, the newer window weighing twice the older', () => {
    const t = new SpeedTrend();
    t.fold(win(32, 32));
    t.fold(win(32, 48, 0, 5));
    assert.ok(Math.abs(t.msPerSample - (32 + 2 * 48) / 3 / 32) < 1e-9, `${t.msPerSample}`);
  });

  it('before a line, a smaller share that takes longer per sample is not a change of speed: the windows stay and the line follows', () => {
    // 12 ms per step + 1 ms per sample. At 128 samples the ratio says 1.09 ms/sample; at 40 samples
    // the ratio predicts 44 ms, the window takes 52 (18 % more per sample: the overhead), within
    // the bounds [44, 140] of "all per sample" and "all per step".
    const t = new SpeedTrend();
    t.fold(win(128, 140, 0, 1));
    t.fold(win(40, 52, 0, 1));
    t.fold(win(48, 60, 0, 1));
    assert.ok(Math.abs(t.msPerSample - 1) < 1e-9 && Math.abs(t.overheadMs - 12) < 1e-9, `${t.msPerSample} + ${t.overheadMs}`);
    // Outside the bounds (3× the time at the same share) it is a new speed.
    const slowed = new SpeedTrend();
    slowed.fold(win(128, 140, 0, 1));
    slowed.fold(win(128, 420, 0, 1));
    assert.equal(slowed.msPerSample, 420 / 128);
  });
});
