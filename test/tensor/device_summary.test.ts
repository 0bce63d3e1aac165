/**
 * What a rank reports of its device at join (worker_joined.device): the cpu with the backend its
 * float32 ops run on, and a webgpu device with its adapter's name (SwiftShader here, a software
 * adapter). The webgpu half is skipped where the backend cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventsFile, RunEvents } from '../../src/metrics/events.js';
import { closeWebGpu } from '../../src/tensor/backends/webgpu/index.js';
import { summarizeDevice } from '../../src/tensor/device_summary.js';
import { backend } from '../../src/tensor/dispatch.js';
import { loadWebGpuForTests } from '../helpers/webgpu.js';

const dir = mkdtempSync(join(tmpdir(), 'device-summary-'));
after(() => {
  closeWebGpu();
  rmSync(dir, { recursive: true, force: true });
});

describe('summarizeDevice', () => {
  it('the cpu: named cpu, with the chosen cpu backend', () => {
    assert.deepEqual(summarizeDevice('cpu'), { type: 'cpu', name: 'cpu', backend: backend().name, software: false });
  });

  it('a device no backend serves is refused by name', () => {
    assert.throws(() => summarizeDevice('tpu'), /no backend runs float32 on device "tpu"/);
  });

  it('webgpu: the adapter Dawn found, and whether it is a software one; worker_joined carries it', async (t) => {
    const load = await loadWebGpuForTests();
    if (!load.backend || !load.adapter) {
      if (process.env.CI === 'true') assert.fail(`webgpu must load on CI: ${load.reason}`);
      return t.skip(load.reason ?? 'no webgpu');
    }
    const summary = summarizeDevice('webgpu');
    assert.deepEqual(summary, { type: 'webgpu', name: load.backend.adapterName, backend: 'webgpu', software: load.adapter.software });
    if (/swiftshader/i.test(summary.name)) assert.equal(summary.software, true, 'SwiftShader is a software adapter');

    const events = new RunEvents(dir, 1, { workers: 2, backend: backend().description, threads: 1, owner: false });
    events.onStart({ device: 'webgpu' });
    events.close();
    const joined = readFileSync(eventsFile(dir), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(joined.map((e) => [e.kind, e.rank, e.device]), [['worker_joined', 1, summary]]);
  });
});
