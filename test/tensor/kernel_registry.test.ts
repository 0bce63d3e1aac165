/** The kernel registry: entries per (op, device, dtype), absence as an answer, replacement. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsBackend } from '../../src/tensor/backends/js.js';
import {
  getKernel, hasKernels, kernelsRegistered, missingKernelMessage, registerKernel, registryVersion, unregisterKernel,
} from '../../src/tensor/kernel_registry.js';

const fill = jsBackend.fill;
const other: typeof fill = (x, v) => fill(x, v + 1);

describe('kernel registry', () => {
  it('a kernel nobody registered is an absent entry, not an error', () => {
    assert.equal(getKernel('gemm', 'reg-a', 'float32'), undefined);
    assert.equal(hasKernels('reg-a', 'float32'), false);
    assert.equal(hasKernels('reg-a', 'float32', ['gemm']), false);
  });

  it('a registered kernel is found under its (op, device, dtype) only', () => {
    registerKernel({ name: 'fill', device: 'reg-b', dtype: 'float32', backend: 'test', kernel: fill });
    assert.equal(getKernel('fill', 'reg-b', 'float32')?.kernel, fill);
    assert.equal(getKernel('fill', 'reg-b', 'float64'), undefined, 'another dtype');
    assert.equal(getKernel('fill', 'reg-c', 'float32'), undefined, 'another device');
    assert.equal(getKernel('affine', 'reg-b', 'float32'), undefined, 'another op');
    assert.ok(hasKernels('reg-b', 'float32'));
    assert.ok(hasKernels('reg-b', 'float32', ['fill']));
    assert.equal(hasKernels('reg-b', 'float32', ['fill', 'gemm']), false, 'every named op must be there');
    assert.deepEqual(kernelsRegistered({ device: 'reg-b' }).map((k) => k.name), ['fill']);
  });

  it('registering the same key again replaces the kernel and returns the one replaced', () => {
    registerKernel({ name: 'fill', device: 'reg-d', dtype: 'float32', backend: 'first', kernel: fill });
    const before = registryVersion();
    const replaced = registerKernel({ name: 'fill', device: 'reg-d', dtype: 'float32', backend: 'second', kernel: other });
    assert.equal(replaced?.backend, 'first');
    assert.equal(getKernel('fill', 'reg-d', 'float32')?.kernel, other);
    assert.equal(kernelsRegistered({ device: 'reg-d' }).length, 1);
    assert.ok(registryVersion() > before, 'a change is visible to tables built from the registry');
  });

  it('an unregistered kernel is absent again', () => {
    registerKernel({ name: 'fill', device: 'reg-e', dtype: 'float32', backend: 'test', kernel: fill });
    unregisterKernel('fill', 'reg-e', 'float32');
    assert.equal(getKernel('fill', 'reg-e', 'float32'), undefined);
  });

  it('the missing-kernel message names the op, the device, the dtype and what is registered', () => {
    registerKernel({ name: 'fill', device: 'reg-f', dtype: 'float32', backend: 'tiny', kernel: fill });
    registerKernel({ name: 'gemm', device: 'reg-g', dtype: 'float64', backend: 'other', kernel: jsBackend.gemm });
    const line = missingKernelMessage('gemm', 'reg-f', 'float32');
    assert.ok(!line.includes('\n'), 'one line');
    assert.match(line, /no kernel "gemm" is registered for float32 on device "reg-f"/);
    assert.match(line, /registered for reg-f\/float32: 1 kernels \(tiny\)/);
    assert.match(line, /"gemm" runs on: .*reg-g\/float64/);
  });
});
