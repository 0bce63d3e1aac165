import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { registeredBackends } from '../../../src/tensor/dispatch.js';
import { CPU, deviceMemory } from '../../../src/tensor/storage.js';
import { BACKEND_NAMES, LEFT_OUT, NARROWING_REFUSED, REFERENCE, REQUIRED_ON_CI, SPECS_SKIP_REFERENCE, backendList, closeDeviceBackends, loadDeviceBackends, specBackendList } from './list.js';

await loadDeviceBackends();

describe('the conformance list of backends', () => {
  // Settle each device before closing it (as every_backend.ts does): closing SwiftShader's device
  // right after it opened, with nothing run on it, hung or aborted at exit in Dawn's teardown
  // (`pthread_mutex_lock: Assertion ... failed`) in most runs once the cpu backends gained kernels.
  after(async () => {
    for (const b of backendList().available) if (b.device !== CPU) await deviceMemory(b.device).alloc('float32', 1).read();
    closeDeviceBackends();
  });
  const { available, missing } = backendList();

  it('has the reference (js) first, always available, running float32 and float64 on the cpu', () => {
    assert.equal(BACKEND_NAMES[0], REFERENCE);
    assert.equal(available[0]?.name, REFERENCE);
    assert.deepEqual([...available[0].dtypes].sort(), ['float32', 'float64']);
    assert.equal(available[0].device, 'cpu');
  });

  it('holds each listed backend once: available ones are registered, the others give a reason', () => {
    assert.equal(available.length + missing.length, BACKEND_NAMES.length);
    assert.equal(new Set(BACKEND_NAMES).size, BACKEND_NAMES.length);
    for (const b of available) assert.ok(registeredBackends().includes(b), `${b.name} is not in the registry`);
    for (const m of missing) assert.ok(m.reason.length > 0, `${m.name}: no reason given`);
  });

  it('lets SMOLCLUSTER_TEST_BACKENDS leave a backend out only off the x86-64 CI run at the native level, and never the reference', () => {
    assert.equal(NARROWING_REFUSED, false,
      `SMOLCLUSTER_TEST_BACKENDS=${process.env.SMOLCLUSTER_TEST_BACKENDS} would leave a backend out of the x86-64 CI run (it is for the arm64 check and the capped reruns only)`);
    assert.ok(!LEFT_OUT.includes(REFERENCE));
    for (const name of LEFT_OUT) {
      assert.ok(!REQUIRED_ON_CI.includes(name));
      assert.match(missing.find((m) => m.name === name)?.reason ?? '', /SMOLCLUSTER_TEST_BACKENDS/);
    }
  });

  it('leaves the reference out of the specs only where the narrowing is allowed, and keeps it loaded as the reference', () => {
    if (NARROWING_REFUSED || !process.env.SMOLCLUSTER_TEST_BACKENDS) assert.equal(SPECS_SKIP_REFERENCE, false);
    assert.equal(specBackendList().some((b) => b.name === REFERENCE), !SPECS_SKIP_REFERENCE);
    assert.equal(available[0]?.name, REFERENCE);
  });

  for (const name of REQUIRED_ON_CI) {
    it(`${name} is available on CI`, { skip: process.env.CI !== 'true' && 'not on CI (CI=true makes a missing backend a failure)' }, () => {
      const m = missing.find((x) => x.name === name);
      assert.equal(m, undefined, `CI=true but ${name} is unavailable: ${m?.reason}`);
    });
  }
});
