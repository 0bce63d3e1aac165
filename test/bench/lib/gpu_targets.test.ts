import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GEMM_PEAK_TARGET, THROUGHPUT_TARGETS, cell, ratioOf, readChildAnswer, verdict } from '../../../bench/lib/gpu_targets.js';
import { FLOPS_PER_TURN, FMA_PROBE } from '../../../bench/lib/fma_peak.js';

interface R { samplesPerSec: number }

describe('bench:gpu-models reading of children and targets (issue 21 §5)', () => {
  it('holds the issue\'s targets', () => {
    assert.deepEqual(THROUGHPUT_TARGETS, { mlp: 1.5, cnn: 1.5, resnet18: 0.7, gpt2: 0.7 });
    assert.deepEqual(GEMM_PEAK_TARGET, { n: 4096, share: 0.5 });
  });

  it('reads a report, PyTorch\'s "no GPU" line, and a failure from a child\'s output', () => {
    assert.deepEqual(readChildAnswer<R>('progress\n{"samplesPerSec": 5}\n', '', 0), { ok: { samplesPerSec: 5 } });
    const none = readChildAnswer<R>('{"engine": "torch", "noGpu": "no torch GPU: torch 2.1 sees no CUDA device and no MPS"}\n', '', 0);
    assert.deepEqual(none, { noGpu: 'no torch GPU: torch 2.1 sees no CUDA device and no MPS' });
    assert.deepEqual(readChildAnswer<R>('', 'Traceback\nRuntimeError: CUDA out of memory\n', 1), { failed: 'exit 1: Traceback | RuntimeError: CUDA out of memory' });
    assert.equal(cell(none, () => 'x'), 'no torch GPU: torch 2.1 sees no CUDA device and no MPS');
  });

  it('gives a ratio only when both sides measured, and a verdict only on a hardware adapter with a target', () => {
    const ours = { ok: { samplesPerSec: 300 } };
    assert.equal(ratioOf<R>(ours, { ok: { samplesPerSec: 200 } }, (r) => r.samplesPerSec), 1.5);
    assert.equal(ratioOf<R>(ours, { noGpu: 'none' }, (r) => r.samplesPerSec), null);
    assert.equal(verdict(1.5, 1.5, false), 'met (≥ 1.5)');
    assert.equal(verdict(1.49, 1.5, false), 'missed (< 1.5)');
    assert.equal(verdict(2, 1.5, true), 'software adapter: no verdict');
    assert.equal(verdict(null, 0.7, false), 'not measured');
    assert.equal(verdict(0.9, undefined, false), 'no target');
  });

  it('the FMA probe\'s WGSL has as many fma calls per loop turn as FLOPS_PER_TURN counts', () => {
    const loop = FMA_PROBE.body.slice(FMA_PROBE.body.indexOf('for ('), FMA_PROBE.body.indexOf('if (i <'));
    assert.equal((loop.match(/= fma\(/g) ?? []).length * 4 * 2, FLOPS_PER_TURN);
  });
});
