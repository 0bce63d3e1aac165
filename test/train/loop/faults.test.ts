import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { FaultInjector, parseFault, parseFaults } from '../../../src/train/loop/faults.js';
import { MonitorLog } from '../../../src/train/loop/monitors.js';
import { ConfigError } from '../../../src/util/errors.js';
import { tempDir } from '../../helpers/cluster.js';

let dir = '';
before(() => {
  dir = tempDir('faults');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('fault specs', () => {
  it('parses every kind with its defaults', () => {
    assert.deepEqual(
      (({ kind, rank, step, steps, ms }) => ({ kind, rank, step, steps, ms }))(parseFault('slow:rank=1:ms=50')),
      { kind: 'slow', rank: 1, step: 0, steps: Infinity, ms: 50 },
    );
    const c = parseFault('corrupt:rank=2:kind=scale:factor=10:step=20');
    assert.deepEqual([c.kind, c.rank, c.corruption, c.factor, c.step, c.steps], ['corrupt', 2, 'scale', 10, 20, 1]);
    assert.equal(parseFault('corrupt:rank=0:kind=noise:std=0.5:steps=3').std, 0.5);
    assert.deepEqual([parseFault('hang:rank=1:step=30').ms, parseFault('hang:rank=1:step=30:ms=100').ms], [Infinity, 100]);
    assert.equal(parseFault('kill:rank=1:step=30').kind, 'kill');
    assert.equal(parseFault('skip-allreduce').rank, 'all');
    assert.equal(parseFault('slow:rank=all:ms=5').rank, 'all');
  });

  it('refuses malformed specs, naming the flag or variable and the problem', () => {
    const cases: Array<[string, RegExp]> = [
      ['explode:rank=1', /unknown fault "explode"/],
      ['slow:ms=50', /rank= is required/],
      ['slow:rank=1', /ms= is required/],
      ['corrupt:rank=1', /kind= is required/],
      ['corrupt:rank=1:kind=zero', /kind must be nan, scale or noise/],
      ['kill:rank=-1:step=3', /rank must be an integer ≥ 0/],
      ['kill:rank=1:step=2.5', /step must be an integer/],
      ['kill:rank=1:when=3', /"when=3" is not one of rank=, step=/],
      ['hang:rank=1:ms', /"ms" is not one of/],
    ];
    for (const [spec, why] of cases) {
      assert.throws(() => parseFault(spec), (e: unknown) => e instanceof ConfigError && /--fault/.test(e.message) && why.test(e.message), spec);
    }
    assert.throws(() => parseFaults([], 'slow:rank=1:ms=5,nope'), /SMOLCLUSTER_FAULT.*unknown fault "nope"/);
  });

  it('reads several specs from the flag and the environment', () => {
    const all = parseFaults(['slow:rank=1:ms=5'], ' kill:rank=0:step=3 , skip-allreduce ');
    assert.deepEqual(all.map((f) => f.kind), ['slow', 'kill', 'skip-allreduce']);
    assert.deepEqual(parseFaults([], undefined), []);
  });
});

describe('FaultInjector', () => {
  const grad = (): Float32Array => Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));

  it('acts only on its rank and its steps, and records the injection once', () => {
    const file = join(dir, 'events.jsonl');
    const log = new MonitorLog(file, 1, true);
    const specs = parseFaults(['corrupt:rank=1:kind=scale:factor=10:step=2:steps=2']);
    const other = new FaultInjector(specs, 0, 2, log);
    assert.equal(other.enabled, false);
    const f = new FaultInjector(specs, 1, 2, log);
    const g = grad();
    const before = g.slice();
    for (const step of [0, 1]) f.beforeCommunication(step, g);
    assert.deepEqual(g, before);
    f.beforeCommunication(2, g);
    f.beforeCommunication(3, g);
    f.beforeCommunication(4, g);
    g.forEach((v, i) => assert.ok(Math.abs(v - before[i] * 100) <= 1e-5 * Math.abs(before[i] * 100) + 1e-6));
    log.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 1);
    assert.deepEqual([lines[0].kind, lines[0].fault, lines[0].rank, lines[0].step], ['fault_injected', 'corrupt', 1, 2]);
  });

  it('nan writes one NaN; noise changes every value', () => {
    const g = grad();
    new FaultInjector(parseFaults(['corrupt:rank=0:kind=nan']), 0, 1).beforeCommunication(0, g);
    assert.equal(g.filter((v) => Number.isNaN(v)).length, 1);
    const h = grad();
    const before = h.slice();
    new FaultInjector(parseFaults(['corrupt:rank=0:kind=noise:std=1']), 0, 1).beforeCommunication(0, h);
    assert.ok(h.every((v, i) => v !== before[i]));
  });

  it('slow sleeps the given time every step', () => {
    const f = new FaultInjector(parseFaults(['slow:rank=0:ms=30']), 0, 1);
    const t0 = performance.now();
    f.beforeCommunication(0, grad());
    f.beforeCommunication(1, grad());
    assert.ok(performance.now() - t0 >= 59);
  });

  it('skip-allreduce puts the local gradient back after the exchange', () => {
    const f = new FaultInjector(parseFaults(['skip-allreduce']), 1, 2);
    const g = grad();
    const local = g.slice();
    f.beforeCommunication(0, g);
    g.fill(0.5); // what the all-reduce would have written
    f.afterCommunication(0, g);
    assert.deepEqual(g, local);
  });

  it('a rank outside the cluster is a configuration error', () => {
    assert.throws(() => new FaultInjector(parseFaults(['kill:rank=3:step=1']), 0, 2), /rank 3 is not in a cluster of 2/);
  });
});
