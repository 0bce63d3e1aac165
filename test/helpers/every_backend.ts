/**
 * describe/it/test over every backend of the conformance list (test/tensor/backends/list.ts), the
 * GPU's included: the op suite (test/tensor/ops) is one spec run on each, as tfjs-core runs one
 * spec per backend. Importing this module loads the device backends (webgpu, on SwiftShader where
 * there is no GPU) and closes them once the file's tests are done, so the process can exit.
 *
 * A spec written for these reads values with await (a GPU's can only be read so) and makes its
 * tensors on the device under test (on_device.ts). A listed backend that cannot load here is a
 * skipped test naming the reason, except under CI=true, where a backend the CI must run
 * (REQUIRED_ON_CI: native, and webgpu on SwiftShader) is a failing one.
 */
import assert from 'node:assert/strict';
import { after, it as nodeIt } from 'node:test';
import { REQUIRED_ON_CI, backendList, closeDeviceBackends, loadDeviceBackends, specBackendList } from '../tensor/backends/list.js';
import { CPU, deviceMemory } from '../../src/tensor/storage.js';
import { suitesOver } from './suites_over.js';

await loadDeviceBackends();
after(async () => {
  await settleDevices();
  closeDeviceBackends();
});

/**
 * Waits until every device has run what was recorded on it: a read runs after the work before it.
 * Closing a GPU with work still queued (a spec's last op, never read) crashed Dawn at exit.
 */
async function settleDevices(): Promise<void> {
  for (const b of backendList().available) if (b.device !== CPU) await deviceMemory(b.device).alloc('float32', 1).read();
}

for (const m of backendList().missing) {
  const required = REQUIRED_ON_CI.includes(m.name) && process.env.CI === 'true';
  nodeIt(`the op suite runs on ${m.name}`, { skip: !required && `${m.name} unavailable here: ${m.reason}` }, () => {
    assert.fail(`CI=true but ${m.name} is unavailable, so the op suite did not run on it: ${m.reason}`);
  });
}

export const { describe, it, test } = suitesOver(specBackendList);
