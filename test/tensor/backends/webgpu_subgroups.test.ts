/**
 * The two row-reduction paths of the webgpu kernels (wgsl_reduce.ts): the WGSL each compiles to,
 * and the switch that turns subgroups off (SMOLCLUSTER_WEBGPU_SUBGROUPS=0), checked in a child
 * process because Dawn is opened once per process. Both paths' numbers are checked against js in
 * webgpu.test.ts (every kernel case runs on each) and, with the variable set, by the parity suite.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { wgslOf } from '../../../src/tensor/backends/webgpu/stream.js';
import { affine, softmax } from '../../../src/tensor/backends/webgpu/wgsl_elementwise.js';
import { layerNorm } from '../../../src/tensor/backends/webgpu/wgsl_nn.js';
import { useSwiftShaderUnlessConfigured } from '../../helpers/webgpu.js';

const LOADER = new URL('../../../src/tensor/backends/webgpu/loader.js', import.meta.url).href;

/** What a fresh process's device has: its features, or why there is no device. */
function deviceFeatures(env: Record<string, string>): { adapter: string[]; device: string[] } | string {
  useSwiftShaderUnlessConfigured();
  const script = `
    const { openGpu } = await import(${JSON.stringify(LOADER)});
    const gpu = await openGpu();
    if (typeof gpu === 'string') { console.log(JSON.stringify(gpu)); process.exit(0); }
    console.log(JSON.stringify({ adapter: gpu.summary.features, device: [...gpu.device.features].sort() }));
    gpu.close();
    process.exit(0);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { adapter: string[]; device: string[] } | string;
}

describe('webgpu row reductions: subgroups or workgroup memory', () => {
  it('compiles the subgroup variant only when asked, and only into kernels that reduce rows', () => {
    for (const spec of [softmax, layerNorm]) {
      const slots = spec.bufs.map((_, i) => i);
      const plain = wgslOf(spec, slots, slots.length);
      const sg = wgslOf(spec, slots, slots.length, { subgroups: true });
      assert.doesNotMatch(plain, /subgroup/, `${spec.name}: the workgroup-memory path uses no subgroup operation`);
      assert.match(plain, /fn wg_sum/);
      assert.ok(sg.startsWith('enable subgroups;\n'), `${spec.name}: the directive comes first`);
      assert.match(sg, /subgroupAdd\(v\)/);
      assert.doesNotMatch(sg, /\/\/! reduce64/, 'the marker is replaced');
    }
    const elementwise = wgslOf(affine, [0, 1], 2, { subgroups: true });
    assert.doesNotMatch(elementwise, /subgroup/, 'a kernel without row reductions needs no feature');
  });

  it('SMOLCLUSTER_WEBGPU_SUBGROUPS=0 creates the device without the feature the adapter offers', (t) => {
    const on = deviceFeatures({});
    if (typeof on === 'string') {
      if (process.env.CI === 'true') assert.fail(`webgpu must load on CI: ${on}`);
      return t.skip(on);
    }
    if (!on.adapter.includes('subgroups')) return t.skip('this adapter offers no subgroups');
    assert.ok(on.device.includes('subgroups'), `by default the device has the adapter's subgroups: ${on.device.join(', ')}`);
    const off = deviceFeatures({ SMOLCLUSTER_WEBGPU_SUBGROUPS: '0' });
    assert.ok(typeof off !== 'string' && !off.device.includes('subgroups'), JSON.stringify(off));
  });
});
