import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatNodeInfo, interfacesOf, joinSummary, nodeInfo, parseLspci, parseNvidiaInformation, parseSystemProfilerDisplays } from '../../src/launch/node_info.js';

// Captured outputs (trimmed) of the three ways GPUs are asked for.
const LSPCI = `00:00.0 Host bridge: Intel Corporation 8th Gen Core Processor Host Bridge/DRAM Registers (rev 07)
00:02.0 VGA compatible controller: Intel Corporation UHD Graphics 630 (Desktop)
01:00.0 VGA compatible controller: NVIDIA Corporation GA106 [GeForce RTX 3060 Lite Hash Rate] (rev a1)
02:00.0 3D controller: NVIDIA Corporation GA100 [A100 PCIe 40GB] (rev a1)
03:00.0 Ethernet controller: Intel Corporation I211 Gigabit Network Connection (rev 03)`;
const NVIDIA = `Model: 		 NVIDIA GeForce RTX 3060
IRQ:   		 142
GPU UUID: 	 GPU-5a1b0000-0000-0000-0000-000000000000
Video BIOS: 	 94.06.2f.00.9a`;
const PROFILER = JSON.stringify({ SPDisplaysDataType: [{ _name: 'Apple M2 Pro', sppci_model: 'Apple M2 Pro', sppci_cores: '19' }] });

describe('smolcluster info', () => {
  it('finds GPUs by name in lspci, NVIDIA\'s driver file and macOS system_profiler output', () => {
    assert.deepEqual(parseLspci(LSPCI), [
      'Intel Corporation UHD Graphics 630 (Desktop)',
      'NVIDIA Corporation GA106 [GeForce RTX 3060 Lite Hash Rate] (rev a1)',
      'NVIDIA Corporation GA100 [A100 PCIe 40GB] (rev a1)',
    ]);
    assert.equal(parseNvidiaInformation(NVIDIA), 'NVIDIA GeForce RTX 3060');
    assert.equal(parseNvidiaInformation('nothing'), null);
    assert.deepEqual(parseSystemProfilerDisplays(PROFILER), ['Apple M2 Pro']);
    assert.deepEqual(parseSystemProfilerDisplays('not json'), []);
  });

  it('interfaces carry their kind; this node\'s facts print as text and summarise for worker_joined', () => {
    const ifaces = interfacesOf({
      lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '', internal: true, cidr: '127.0.0.1/8' }],
      wlan0: [{ address: '10.0.0.7', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: '10.0.0.7/24' }],
    } as unknown as NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]>, 'linux');
    assert.deepEqual(ifaces, [{ name: 'lo', kind: 'loopback', addresses: ['127.0.0.1/8'] }, { name: 'wlan0', kind: 'wifi', addresses: ['10.0.0.7/24'] }]);
    const info = nodeInfo('js (test)');
    assert.ok(info.cores >= 1 && info.memoryGiB > 0);
    const text = formatNodeInfo({ ...info, interfaces: ifaces, gpus: ['Apple M2 Pro'] });
    assert.match(text, /kernels +js \(test\)/);
    assert.match(text, /addon +none loaded/);
    const prebuilt = { path: '/p/prebuilds/linux-x64/smolcluster.node', origin: 'prebuilt', dnnlLibrary: '/p/prebuilds/linux-x64/libdnnl.so.2' };
    assert.match(formatNodeInfo({ ...info, addon: prebuilt }), /addon +\/p\/prebuilds\/linux-x64\/smolcluster\.node \(prebuilt; oneDNN from \/p\/prebuilds\/linux-x64\/libdnnl\.so\.2\)/);
    assert.doesNotMatch(formatNodeInfo({ ...info, addon: prebuilt }), /cpu level/, 'no table: no line');
    const levels = ['generic', 'avx2', 'avx512', 'avx512-vnni', 'avx512-bf16', 'amx'];
    const table = { arch: 'x64' as const, level: 'avx2', detectedLevel: 'amx', levels, features: { avx2: true, avx512: false }, detected: { avx2: true, avx512: true } };
    assert.match(formatNodeInfo({ ...info, addon: { ...prebuilt, cpu: table } }),
      /cpu level +avx2 \(capped by SMOLCLUSTER_CPU; the CPU reaches amx\): avx2; levels generic < avx2 < avx512 < avx512-vnni < avx512-bf16 < amx/);
    assert.match(formatNodeInfo({ ...info, addon: { ...prebuilt, cpu: { ...table, level: 'generic', detectedLevel: 'generic', features: { avx2: false } } } }),
      /cpu level +generic: no SIMD extensions; levels/);
    assert.match(text, /gpus +Apple M2 Pro/);
    assert.match(formatNodeInfo({ ...info, bf16: ['amx_bf16', 'avx512_bf16'], bf16Source: '/proc/cpuinfo' }), /bf16 +amx_bf16, avx512_bf16 \(\/proc\/cpuinfo; --precision auto/);
    assert.match(formatNodeInfo({ ...info, bf16: [], bf16Source: '/proc/cpuinfo' }), /bf16 +no bf16 instructions \(\/proc\/cpuinfo/);
    assert.match(text, /wlan0 +wifi +10\.0\.0\.7\/24/);
    assert.deepEqual(joinSummary({ ...info, interfaces: ifaces, gpus: [] }).interfaces, ['wlan0 (wifi) 10.0.0.7/24']);
  });
});

describe('smolcluster info (CLI)', () => {
  it('--json prints one object with cores, memory, kernels, interfaces and GPUs; text names the same', async () => {
    const { runCliProcess } = await import('../helpers/cluster.js');
    const json = await runCliProcess(['info', '--json'], { timeoutMs: 30_000 });
    assert.equal(json.code, 0, json.stderr);
    const info = JSON.parse(json.stdout) as Record<string, unknown>;
    for (const k of ['cores', 'memory_gib', 'available_cores', 'backend', 'addon', 'interfaces', 'gpus', 'gpu_source']) assert.ok(k in info, k);
    assert.equal(info.schema, 'smolcluster-node-info');
    assert.equal(info.schema_version, 1);
    assert.ok(Object.keys(info).every((k) => /^[a-z0-9_]+$/.test(k)), 'snake_case keys only');
    assert.ok((info.interfaces as { kind: string }[]).some((i) => i.kind === 'loopback'));
    const text = await runCliProcess(['info'], { timeoutMs: 30_000 });
    assert.match(text.stdout, new RegExp(`${String(info.cores)} cores`));
    // The GPU loaders' own lines (Dawn's "vkCreateInstance: Found no drivers!") stay in the probe's child: one line of info's own says what WebGPU found.
    assert.doesNotMatch(text.stderr, /vkCreateInstance|Warning:/);
    assert.match(text.stdout, /^webgpu {6}(no GPU adapter|unavailable: .+|.+\((software|hardware)\); max buffer .+)$/m);
  });
});
