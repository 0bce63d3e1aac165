/** The open backend list and the kernel lookup: ops dispatch on the tensor's (op, device, dtype), never on a backend's name. */
// run-tests: own process (it asserts which backends are registered: other files register more)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Backend } from '../../src/tensor/backend.js';
import { jsBackend } from '../../src/tensor/backends/js.js';
import { backend, backendFor, canRun, kernelsFor, registerBackend, registeredBackends, setBackend } from '../../src/tensor/dispatch.js';
import { getKernel } from '../../src/tensor/kernel_registry.js';
import { supportsPrecision } from '../../src/tensor/precision_support.js';
import { add } from '../../src/tensor/ops/elementwise.js';
import { Tensor } from '../../src/tensor/tensor.js';

describe('backend registry and dispatch', () => {
  it('float64 runs on the backend that declares it (js), whichever backend is chosen for float32', () => {
    const before = backend().name;
    try {
      for (const b of registeredBackends()) {
        setBackend(b.name);
        assert.equal(backendFor({ device: 'cpu', dtype: 'float32' }), b);
        assert.ok(kernelsFor({ device: 'cpu', dtype: 'float64' }).dtypes.includes('float64'));
      }
    } finally {
      setBackend(before);
    }
  });

  it('a device no backend runs is refused, naming the device, the dtype and the registered backends', () => {
    assert.throws(() => kernelsFor({ device: 'tpu', dtype: 'float32' }), /no backend runs float32 on device "tpu" \(registered: js@cpu/);
  });

  it('a registered backend of another device serves tensors on that device (and only them)', () => {
    // A "device" that is host memory under another name, with js's kernels counting the calls (its
    // quantKernels factory, which dispatch calls once per format when it installs them, is no kernel).
    let calls = 0;
    const counting = new Proxy(jsBackend, {
      get(target, prop, receiver) {
        if (prop === 'name') return 'counting';
        if (prop === 'device') return 'cpu2';
        if (prop === 'dtypes') return ['float32'];
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' && prop !== 'quantKernels' ? (...a: unknown[]) => (calls++, (v as (...x: unknown[]) => unknown).apply(target, a)) : v;
      },
    }) as Backend;
    registerBackend(counting);
    assert.ok(registeredBackends().includes(counting));
    assert.equal(backendFor({ device: 'cpu2', dtype: 'float32' }), counting);
    assert.notEqual(backendFor({ device: 'cpu', dtype: 'float32' }), counting);
    add(Tensor.from([1], [1]), Tensor.from([2], [1]));
    assert.equal(calls, 0, 'cpu tensors never reach the cpu2 backend');
  });

  it('an unknown backend name is refused with the registered ones', () => {
    assert.throws(() => setBackend('webgpu'), /backend "webgpu" is not registered \(registered: js/);
  });
});

describe('kernels looked up per (op, device, dtype)', () => {
  // A backend on a device of its own that has written two kernels so far (js's, on host memory).
  const partial = {
    name: 'partial', device: 'cpu3', dtypes: ['float32'] as const, description: 'two kernels', multithreaded: false,
    setThreads: (): void => {}, getThreads: (): number => 1, fill: jsBackend.fill, gemm: jsBackend.gemm,
  };

  it('a backend registers only the kernels it has; the others are absent entries', () => {
    registerBackend(partial);
    assert.ok(canRun('cpu3', 'float32', ['fill', 'gemm']));
    assert.equal(canRun('cpu3', 'float32', ['gemmBf16' as never]), false);
    assert.equal(getKernel('softmax', 'cpu3', 'float32'), undefined);
    assert.equal(getKernel('fill', 'cpu3', 'float32')?.backend, 'partial');
  });

  it('a registered kernel runs; an absent one fails in one line naming op, device, dtype and what is registered', () => {
    registerBackend(partial);
    const x = new Float32Array(3);
    const k = kernelsFor({ device: 'cpu3', dtype: 'float32' });
    k.fill(x as never, 2);
    assert.deepEqual([...x], [2, 2, 2]);
    assert.throws(() => k.softmax(x as never, 1, 3, x as never),
      /^Error: no kernel "softmax" is registered for float32 on device "cpu3" \(registered for cpu3\/float32: 2 kernels \(partial\); "softmax" runs on: cpu\/float32/);
  });

  it('precision support is a lookup: bf16 where the bf16 kernels are registered, fp32 where the float32 ones are', () => {
    registerBackend(partial);
    assert.ok(supportsPrecision('cpu', 'fp32'));
    assert.ok(supportsPrecision('cpu', 'bf16'), 'js and native both write the bf16 kernels');
    assert.ok(supportsPrecision('cpu3', 'fp32'));
    assert.equal(supportsPrecision('cpu3', 'bf16'), false);
    assert.throws(() => kernelsFor({ device: 'cpu3', dtype: 'bfloat16' }), /^Error: device "cpu3" computes in fp32 only \(no bf16 kernels are registered for it\)/);
    assert.equal(supportsPrecision('tpu', 'fp32'), false, 'a device nothing is registered for');
  });

  it('choosing another cpu backend replaces the float32 entries with its kernels', () => {
    const before = backend().name;
    try {
      for (const b of registeredBackends().filter((r) => r.device === 'cpu')) {
        setBackend(b.name);
        assert.equal(getKernel('gemm', 'cpu', 'float32')?.backend, b.name);
        assert.equal(getKernel('gemm', 'cpu', 'float64')?.backend, 'js');
      }
    } finally {
      setBackend(before);
    }
  });

  it('bf16 is a dtype: the bf16 kernels are the bfloat16 entries of gemm, conv2d and conv2dBackward, not float32 twins', () => {
    const before = backend().name;
    try {
      for (const b of registeredBackends().filter((r) => r.device === 'cpu' && r.dtypes.includes('float32'))) {
        setBackend(b.name);
        for (const op of ['gemm', 'conv2d', 'conv2dBackward'] as const) assert.equal(getKernel(op, 'cpu', 'bfloat16')?.backend, b.name, op);
        for (const twin of ['gemmBf16', 'conv2dBf16', 'conv2dBackwardBf16'] as const) assert.equal(getKernel(twin as never, 'cpu', 'float32'), undefined, twin);
        // The entry is the backend's bf16 GEMM: bf16 operands (1.5 and 2 are exact), float32 result.
        const one = 0x3fc0; // bf16 bits of 1.5
        const two = 0x4000; // bf16 bits of 2
        const c = new Float32Array(1);
        kernelsFor({ device: 'cpu', dtype: 'bfloat16' }).gemm(false, false, 1, 1, 2, 1, Uint16Array.of(one, two) as never, 0,
          Uint16Array.of(two, one) as never, 0, 0, c as never, 0, 1);
        assert.equal(c[0], 1.5 * 2 + 2 * 1.5);
      }
    } finally {
      setBackend(before);
    }
  });
});
