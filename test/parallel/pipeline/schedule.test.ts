import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gpipeSchedule, idealBubbleFraction, oneFOneBSchedule, peakLiveActivations, pipelineSchedule } from '../../../src/parallel/pipeline/schedule.js';

const fmt = (xs: { kind: string; micro: number }[]): string => xs.map((a) => `${a.kind[0].toUpperCase()}${a.micro}`).join(' ');

test('gpipe runs every forward then every backward', () => {
  assert.equal(fmt(gpipeSchedule(1, 4, 3)), 'F0 F1 F2 B0 B1 B2');
});

test('1f1b: warm-up of P-1-s forwards, one forward one backward, cool-down', () => {
  assert.equal(fmt(oneFOneBSchedule(0, 4, 6)), 'F0 F1 F2 F3 B0 F4 B1 F5 B2 B3 B4 B5');
  assert.equal(fmt(oneFOneBSchedule(2, 4, 6)), 'F0 F1 B0 F2 B1 F3 B2 F4 B3 F5 B4 B5');
  assert.equal(fmt(oneFOneBSchedule(3, 4, 6)), 'F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5');
  assert.equal(fmt(oneFOneBSchedule(0, 4, 2)), 'F0 F1 B0 B1');
});

test('every schedule runs each micro-batch forward once, then backward once, backwards in order', () => {
  for (const name of ['gpipe', '1f1b'] as const) {
    for (const P of [1, 2, 4]) {
      for (let M = 1; M <= 8; M++) {
        for (let s = 0; s < P; s++) {
          const acts = pipelineSchedule(name, s, P, M);
          assert.equal(acts.length, 2 * M);
          const back = acts.filter((a) => a.kind === 'backward').map((a) => a.micro);
          assert.deepEqual(back, [...Array(M).keys()]);
          acts.forEach((a, i) => {
            if (a.kind === 'backward') assert.ok(acts.slice(0, i).some((b) => b.kind === 'forward' && b.micro === a.micro));
          });
        }
      }
    }
  }
});

test('1f1b holds at most P-s micro-batches of activations (stage 0: P); gpipe holds M', () => {
  for (const P of [2, 4]) {
    for (let M = 1; M <= 8; M++) {
      for (let s = 0; s < P; s++) {
        assert.equal(peakLiveActivations(oneFOneBSchedule(s, P, M)), Math.min(P - s, M), `P=${P} M=${M} s=${s}`);
        assert.equal(peakLiveActivations(gpipeSchedule(s, P, M)), M);
      }
    }
  }
});

test('bad shapes are refused naming the flag', () => {
  assert.throws(() => oneFOneBSchedule(0, 2, 0), /--micro-batches/);
  assert.throws(() => gpipeSchedule(0, 0, 2), /--pipeline-stages/);
  assert.throws(() => pipelineSchedule('zigzag' as never, 0, 2, 2), /--pipeline-schedule/);
  assert.equal(idealBubbleFraction(4, 8), 3 / 11);
});
