/** The open backend registry: ops dispatch on the tensor's (device, dtype), never on a backend's name. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Backend } from '../../src/tensor/backend.js';
import { jsBackend } from '../../src/tensor/backends/js.js';
import { backend, kernelsFor, registerBackend, registeredBackends, setBackend } from '../../src/tensor/dispatch.js';
import { add } from '../../src/tensor/ops/elementwise.js';
import { Tensor } from '../../src/tensor/tensor.js';

describe('backend registry and dispatch', () => {
  it('float64 runs on the backend that declares it (js), whichever backend is chosen for float32', () => {
    const before = backend().name;
    try {
      for (const b of registeredBackends()) {
        setBackend(b.name);
        assert.equal(kernelsFor({ device: 'cpu', dtype: 'float32' }), b);
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
    // A "device" that is host memory under another name, with js's kernels counting the calls.
    let calls = 0;
    const counting = new Proxy(jsBackend, {
      get(target, prop, receiver) {
        if (prop === 'name') return 'counting';
        if (prop === 'device') return 'cpu2';
        if (prop === 'dtypes') return ['float32'];
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (...a: unknown[]) => (calls++, (v as (...x: unknown[]) => unknown).apply(target, a)) : v;
      },
    }) as Backend;
    registerBackend(counting);
    assert.ok(registeredBackends().includes(counting));
    assert.equal(kernelsFor({ device: 'cpu2', dtype: 'float32' }), counting);
    assert.notEqual(kernelsFor({ device: 'cpu', dtype: 'float32' }), counting);
    add(Tensor.from([1], [1]), Tensor.from([2], [1]));
    assert.equal(calls, 0, 'cpu tensors never reach the cpu2 backend');
  });

  it('an unknown backend name is refused with the registered ones', () => {
    assert.throws(() => setBackend('webgpu'), /backend "webgpu" is not registered \(registered: js/);
  });
});
