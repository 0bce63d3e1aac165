import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { constantLr, cosineLr, linearLr, makeSchedule, stepLr, warmupConstantLr, wsdLr } from '../../../src/nn/optim/schedule.js';

function close(actual: number, expected: number, msg: string): void {
  assert.ok(Math.abs(actual - expected) <= 1e-12 + 1e-12 * Math.abs(expected), `${msg}: ${actual} != ${expected}`);
}

describe('LR schedules', () => {
  it('constant: the same LR at every step', () => {
    const s = constantLr(0.05);
    for (const step of [0, 1, 100, 1e6]) assert.equal(s.lrAt(step), 0.05);
  });

  it('step (torch StepLR): lr·gamma^⌊step/stepSize⌋', () => {
    const s = stepLr(0.1, 10, 0.5);
    close(s.lrAt(0), 0.1, 'step 0');
    close(s.lrAt(9), 0.1, 'step 9');
    close(s.lrAt(10), 0.05, 'step 10');
    close(s.lrAt(19), 0.05, 'step 19');
    close(s.lrAt(25), 0.025, 'step 25');
    close(stepLr(1, 3).lrAt(6), 0.01, 'default gamma 0.1');
    assert.throws(() => stepLr(0.1, 0), /stepSize must be >= 1/);
  });

  it('cosine without warm-up: lr at 0, half at the middle, minLr at the end and after', () => {
    const s = cosineLr(1, 100);
    close(s.lrAt(0), 1, 'step 0');
    close(s.lrAt(25), 0.5 * (1 + Math.cos(Math.PI / 4)), 'step 25');
    close(s.lrAt(50), 0.5, 'step 50');
    close(s.lrAt(100), 0, 'step 100');
    close(s.lrAt(150), 0, 'held after the end');
    const m = cosineLr(1, 100, 0, 0.1);
    close(m.lrAt(50), 0.55, 'minLr 0.1, step 50');
    close(m.lrAt(100), 0.1, 'minLr at the end');
  });

  it('cosine with warm-up: linear from lr/warmup to lr, then the cosine over the remaining steps', () => {
    const s = cosineLr(1, 110, 10);
    close(s.lrAt(0), 0.1, 'warm-up step 0 = lr/warmup');
    close(s.lrAt(4), 0.5, 'warm-up step 4');
    close(s.lrAt(9), 1, 'last warm-up step reaches lr');
    close(s.lrAt(10), 1, 'first cosine step');
    close(s.lrAt(60), 0.5, 'cosine midpoint (50 of 100 steps)');
    close(s.lrAt(110), 0, 'end');
    // Monotone: up during warm-up, down after.
    for (let i = 1; i < 10; i++) assert.ok(s.lrAt(i) > s.lrAt(i - 1));
    for (let i = 11; i <= 110; i++) assert.ok(s.lrAt(i) < s.lrAt(i - 1));
  });

  it('cosine refuses a warm-up longer than the run', () => {
    assert.throws(() => cosineLr(1, 10, 11), /0 <= warmupSteps \(11\) <= totalSteps \(10\)/);
    assert.throws(() => cosineLr(1, 0), /cosineLr/);
    assert.throws(() => cosineLr(1, 10, -1), /cosineLr/);
  });

  it('makeSchedule dispatches by name (step: default step size ⌊total/3⌋)', () => {
    assert.equal(makeSchedule({ name: 'constant', lr: 0.3, totalSteps: 10 }).lrAt(7), 0.3);
    const st = makeSchedule({ name: 'step', lr: 1, totalSteps: 30, gamma: 0.5 });
    close(st.lrAt(9), 1, 'step schedule before 10');
    close(st.lrAt(10), 0.5, 'step schedule at 10');
    const cos = makeSchedule({ name: 'cosine', lr: 1, totalSteps: 20, warmupSteps: 4 });
    close(cos.lrAt(1), 0.5, 'cosine warm-up');
    close(cos.lrAt(12), 0.5, 'cosine midpoint');
  });

  it('linear (the Trainer\'s linear): warm-up, then a straight line to minLr at the end, held after', () => {
    const s = linearLr(1, 110, 10);
    close(s.lrAt(9), 1, 'end of warm-up');
    close(s.lrAt(10), 1, 'first decay step');
    close(s.lrAt(60), 0.5, 'half way down');
    close(s.lrAt(110), 0, 'end');
    close(s.lrAt(200), 0, 'held');
    const m = linearLr(1, 100, 0, 0.2);
    close(m.lrAt(50), 0.6, 'minLr 0.2, half way');
    close(m.lrAt(100), 0.2, 'ends at minLr');
  });

  it('wsd: warm-up, lr held, then a cosine decay to minLr over the last decaySteps', () => {
    const s = wsdLr(1, 100, 10, 20, 0.1);
    close(s.lrAt(4), 0.5, 'warm-up');
    for (const step of [10, 50, 79, 80]) close(s.lrAt(step), 1, `stable at ${step}`);
    close(s.lrAt(90), 0.1 + 0.9 * 0.5, 'decay midpoint');
    close(s.lrAt(100), 0.1, 'ends at minLr');
    close(s.lrAt(150), 0.1, 'held');
    assert.throws(() => wsdLr(1, 100, 10, 91), /decaySteps \(91\) <= totalSteps \(100\) - warmupSteps \(10\)/);
    assert.throws(() => wsdLr(1, 100, 0, -1), /0 <= decaySteps/);
    close(wsdLr(1, 10, 0, 0).lrAt(9), 1, 'no decay phase: held to the end');
  });

  it('constant with warm-up ramps to lr and stays; minLr above lr is refused', () => {
    const s = warmupConstantLr(0.4, 100, 4);
    close(s.lrAt(0), 0.1, 'first warm-up step');
    close(s.lrAt(3), 0.4, 'end of warm-up');
    close(s.lrAt(99), 0.4, 'held');
    assert.throws(() => cosineLr(0.1, 10, 0, 0.2), /minLr \(0.2\) <= lr \(0.1\)/);
    assert.throws(() => linearLr(0.1, 10, 0, -1), /linearLr: need 0 <= minLr/);
  });

  it('makeSchedule: warm-up for constant, linear and wsd; wsd decays over the last fifth by default', () => {
    close(makeSchedule({ name: 'constant', lr: 1, totalSteps: 10, warmupSteps: 2 }).lrAt(0), 0.5, 'constant warm-up');
    close(makeSchedule({ name: 'linear', lr: 1, totalSteps: 10, minLr: 0.5 }).lrAt(10), 0.5, 'linear minLr');
    const wsd = makeSchedule({ name: 'wsd', lr: 1, totalSteps: 100 });
    close(wsd.lrAt(80), 1, 'stable until the last 20 steps');
    close(wsd.lrAt(90), 0.5, 'decay midpoint');
    const short = makeSchedule({ name: 'wsd', lr: 1, totalSteps: 3, warmupSteps: 3 });
    close(short.lrAt(2), 1, 'a run all warm-up has no decay phase left');
    close(makeSchedule({ name: 'wsd', lr: 1, totalSteps: 100, decaySteps: 50 }).lrAt(75), 0.5, 'decaySteps given');
  });
});
