import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BAND, CapacityMeter, HEADROOM } from '../../src/balance/capacity.js';
import { FakeCpu } from '../helpers/fake_cpu.js';

const near = (a: number, b: number, tol = 1e-9): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

describe('CapacityMeter (fake clock)', () => {
  it('granted: time on a CPU over time wanting one; nothing before the first window', () => {
    const cpu = new FakeCpu();
    const m = new CapacityMeter(cpu);
    m.start();
    cpu.pass(1000, 900, 1);
    const first = m.read();
    near(first.granted, 1);
    near(first.capacity, 1);
    near(first.factor, 1);
    // Per step: each call measures since the previous one.
    near(m.step().granted, 1);
    cpu.pass(10, 12, 1 / 3);
    const s = m.step();
    near(s.granted, 1 / 3);
    near(s.cpuMs, 4);
    cpu.pass(10, 10, 1);
    near(m.step().granted, 1);
    const idle = new CapacityMeter(cpu).read();
    assert.ok(Number.isNaN(idle.granted) && idle.factor === 1, 'not started: nothing measured');
  });

  it('a quota is read, not measured: a rank under it (full speed) is planned at HEADROOM × quota', () => {
    const cpu = new FakeCpu();
    cpu.quota = 1 / 3;
    const m = new CapacityMeter(cpu);
    m.start();
    // Little work: never throttled, its steps look full speed.
    cpu.pass(1000, 200, 1);
    const r = m.read();
    near(r.capacity, HEADROOM / 3);
    // Its work takes 1 / (0.9 / 3) as long at the capacity it can count on.
    near(r.factor, 3 / HEADROOM);
    // Throttled (it wanted the CPU and got a third of the time): the same capacity planned with.
    cpu.pass(1000, 900, 1 / 3);
    const t = m.read();
    near(t.granted, 1 / 3);
    near(t.factor, 3 / HEADROOM);
    near(t.capacity, HEADROOM / 3, 1e-9);
  });

  it('smoothing: one window of outside load barely moves the capacity planned with', () => {
    const cpu = new FakeCpu();
    const m = new CapacityMeter(cpu, { halfLifeMs: 4000 });
    m.start();
    for (let i = 0; i < 10; i++) {
      cpu.pass(500, 450, 1);
      m.read();
    }
    // A neighbour takes half the core for 500 ms.
    cpu.pass(500, 450, 0.5);
    const r = m.read();
    near(r.granted, 0.5);
    near(r.smoothed, 1 - 0.5 * (1 - 0.5 ** (500 / 4000)));
    near(r.capacity, 1, 0);
    near(r.factor, 1);
  });

  it('hysteresis: the planned capacity follows load that stays, in steps larger than the band, and comes back', () => {
    const cpu = new FakeCpu();
    const m = new CapacityMeter(cpu, { halfLifeMs: 1000 });
    m.start();
    const planned: number[] = [];
    for (let i = 0; i < 40; i++) {
      cpu.pass(250, 240, i < 4 || i >= 24 ? 1 : 0.5);
      planned.push(m.read().capacity);
    }
    const changes = planned.filter((c, i) => i > 0 && c !== planned[i - 1]);
    assert.ok(changes.length >= 2 && changes.length <= 10, `few changes: ${planned.map((c) => c.toFixed(2)).join(' ')}`);
    // Each change moved the planned capacity by more than the band.
    planned.forEach((c, i) => i > 0 && c !== planned[i - 1] && assert.ok(Math.abs(c - planned[i - 1]) > BAND * planned[i - 1] * 0.99));
    assert.ok(planned[23] < 0.6, `followed the load that stayed: ${planned[23]}`);
    assert.ok(planned[39] > 0.85, `and came back: ${planned[39]}`);
  });

  it('without schedstat the wall times are the work; a quota still caps the capacity', () => {
    const cpu = new FakeCpu();
    cpu.schedstat = false;
    cpu.quota = 0.5;
    const m = new CapacityMeter(cpu);
    m.start();
    cpu.pass(1000, 1000, 1);
    near(m.step().granted, 1);
    const r = m.read();
    near(r.capacity, 0.5 * HEADROOM);
  });

  it('a window in which the rank hardly wanted a CPU measures nothing', () => {
    const cpu = new FakeCpu();
    const m = new CapacityMeter(cpu);
    m.start();
    cpu.pass(1000, 1, 0.5);
    const r = m.read();
    assert.ok(Number.isNaN(r.granted));
    near(r.capacity, 1);
  });
});
