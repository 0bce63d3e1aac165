/**
 * --precision auto (src/train/engine/precision_auto.ts): the bf16 instructions found in a CPU's
 * description, and the decision from them and the probe's timings (injected here, so every branch
 * is pinned whatever this machine has); the real probe runs and gives finite times.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computePrecision } from '../../../src/tensor/precision.js';
import {
  MIN_SPEEDUP, bf16InCpuinfo, bf16InSysctl, decideAutoPrecision, detectBf16Instructions, resolveAutoPrecision, timeProbe,
} from '../../../src/train/engine/precision_auto.js';
import { supportsPrecision } from '../../../src/tensor/precision_support.js';
import { jsBackend } from '../../../src/tensor/backends/js.js';
import { registerBackend } from '../../../src/tensor/dispatch.js';

/** Two cores of a Sapphire Rapids Xeon (trimmed), as /proc/cpuinfo lists them. */
const SAPPHIRE_RAPIDS = `processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme de pse tsc msr avx2 avx512f avx512dq avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8
bugs\t\t: spectre_v1

processor\t: 1
flags\t\t: fpu vme de pse tsc msr avx2 avx512f avx512dq avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8
`;
/** An AMD Zen 4 core: AVX512-BF16, no AMX. */
const ZEN4 = 'processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n';
/** A Skylake-SP core: AVX-512, no bf16 (amx_tile alone, or a flag merely containing "bf16", must not count). */
const SKYLAKE = 'processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw avx512_vnni xbf16x\n';
/** A Neoverse V1 (Graviton 3) core on arm64 Linux. */
const NEOVERSE_V1 = 'processor\t: 0\nBogoMIPS\t: 2100.00\nFeatures\t: fp asimd evtstrm aes sve asimdbf16 bf16 i8mm\nCPU implementer\t: 0x41\n';
const NEOVERSE_N1 = 'processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics\n';

describe('bf16 instruction detection', () => {
  it('reads amx_bf16 and avx512_bf16 from x86 flags, bf16 from arm64 Features, in a fixed order, once each', () => {
    assert.deepEqual(bf16InCpuinfo(SAPPHIRE_RAPIDS), ['amx_bf16', 'avx512_bf16']);
    assert.deepEqual(bf16InCpuinfo(ZEN4), ['avx512_bf16']);
    assert.deepEqual(bf16InCpuinfo(SKYLAKE), []);
    assert.deepEqual(bf16InCpuinfo(NEOVERSE_V1), ['bf16']);
    assert.deepEqual(bf16InCpuinfo(NEOVERSE_N1), []);
    assert.deepEqual(bf16InCpuinfo(''), []);
  });

  it('macOS: sysctl hw.optional.arm.FEAT_BF16 = 1 (M2 and later); 0 or an unknown name means none', () => {
    assert.equal(bf16InSysctl('1\n'), true);
    assert.equal(bf16InSysctl('0\n'), false);
    const m2 = detectBf16Instructions({ cpu: null, platform: 'darwin', arch: 'arm64', sysctl: () => '1\n' });
    assert.deepEqual(m2, { found: ['FEAT_BF16'], source: 'sysctl hw.optional.arm.FEAT_BF16' });
    const m1 = detectBf16Instructions({ cpu: null, platform: 'darwin', arch: 'arm64', sysctl: () => '0\n' });
    assert.deepEqual(m1.found, []);
    const old = detectBf16Instructions({ cpu: null, platform: 'darwin', arch: 'arm64', sysctl: () => { throw new Error('unknown oid'); } });
    assert.deepEqual(old.found, []);
    assert.match(old.source, /unknown/);
  });

  it('the native CPU table, when loaded, is what counts: a cap that excludes bf16 finds none', () => {
    const table = (features: Record<string, boolean>, level: string) => ({ arch: 'x64' as const, level, detectedLevel: 'amx', levels: [], features, detected: {} });
    const amx = detectBf16Instructions({ cpu: table({ avx2: true, avx512bf16: true, amxBf16: true }, 'amx'), read: () => SKYLAKE });
    assert.deepEqual(amx, { found: ['amx_bf16', 'avx512_bf16'], source: 'native CPU table, level amx' });
    const capped = detectBf16Instructions({ cpu: table({ avx2: true, avx512bf16: false, amxBf16: false }, 'avx2'), read: () => SAPPHIRE_RAPIDS });
    assert.deepEqual(capped, { found: [], source: 'native CPU table, level avx2' });
    const m2 = detectBf16Instructions({ cpu: { ...table({ neon: true, bf16: true }, 'neon-bf16'), arch: 'arm64' } });
    assert.deepEqual(m2.found, ['bf16']);
  });

  it('Linux reads /proc/cpuinfo; an unreadable one or another platform finds none, saying why', () => {
    const files: string[] = [];
    const linux = detectBf16Instructions({ cpu: null, platform: 'linux', read: (f) => (files.push(f), ZEN4) });
    assert.deepEqual(files, ['/proc/cpuinfo']);
    assert.deepEqual(linux, { found: ['avx512_bf16'], source: '/proc/cpuinfo' });
    const hidden = detectBf16Instructions({ cpu: null, platform: 'linux', read: () => { throw new Error('EACCES'); } });
    assert.deepEqual(hidden.found, []);
    assert.match(hidden.source, /unreadable.*EACCES/);
    assert.match(detectBf16Instructions({ cpu: null, platform: 'win32', arch: 'x64' }).source, /no bf16 detection on win32 x64/);
    assert.match(detectBf16Instructions({ cpu: null, platform: 'darwin', arch: 'x64' }).source, /no bf16 detection on darwin x64/);
  });
});

describe('auto\'s decision', () => {
  const found = { found: ['amx_bf16'], source: '/proc/cpuinfo' };
  const timings = (fp32: number, bf16: number) => {
    const asked: string[] = [];
    return { asked, time: () => (asked.push('timed'), { fp32Ms: fp32, bf16Ms: bf16 }) };
  };

  it('bf16 when the instructions are there and bf16 is at least MIN_SPEEDUP faster; the reason names both', () => {
    const t = timings(4, 1);
    const a = decideAutoPrecision(found, t.time);
    assert.equal(a.precision, 'bf16');
    assert.deepEqual(t.asked, ['timed']);
    assert.deepEqual([a.fp32Ms, a.bf16Ms, a.instructions], [4, 1, ['amx_bf16']]);
    assert.match(a.reason, /amx_bf16 \(\/proc\/cpuinfo\).*bf16 1\.00 ms, fp32 4\.00 ms: bf16 4\.00× faster/);
    assert.equal(decideAutoPrecision(found, timings(MIN_SPEEDUP, 1).time).precision, 'bf16');
  });

  it('fp32 when bf16 is slower or not faster by MIN_SPEEDUP (an engine without bf16 kernels)', () => {
    const slower = decideAutoPrecision(found, timings(1, 3).time);
    assert.equal(slower.precision, 'fp32');
    assert.match(slower.reason, /but .*bf16 3\.00 ms, fp32 1\.00 ms: bf16 not 1\.1× faster/);
    assert.equal(decideAutoPrecision(found, timings(1.05, 1).time).precision, 'fp32');
  });

  it('fp32 without measuring when there are no bf16 instructions', () => {
    const t = timings(9, 1);
    const a = decideAutoPrecision({ found: [], source: '/proc/cpuinfo' }, t.time);
    assert.deepEqual(a, { precision: 'fp32', instructions: [], fp32Ms: null, bf16Ms: null, reason: 'no bf16 instructions (/proc/cpuinfo)' });
    assert.deepEqual(t.asked, []);
  });

  it('the real probe times both precisions and leaves the precision as it was; the choice is made once', () => {
    const before = computePrecision();
    const t = timeProbe(1); // one round after the warm-up
    for (const ms of [t.fp32Ms, t.bf16Ms]) assert.ok(Number.isFinite(ms) && ms > 0, JSON.stringify(t));
    assert.equal(computePrecision(), before);
    const a = resolveAutoPrecision();
    assert.ok(a.precision === 'fp32' || a.precision === 'bf16');
    assert.equal(resolveAutoPrecision(), a);
  });
});

describe('which precision a device computes in (supportsPrecision)', () => {
  it('the cpu runs fp32 and bf16; a device whose backends declare float32 only runs fp32, and auto chooses fp32 there without measuring', () => {
    assert.equal(supportsPrecision('cpu', 'fp32'), true);
    assert.equal(supportsPrecision('cpu', 'bf16'), true);
    // A device with no backend registered computes nothing.
    assert.equal(supportsPrecision('nowhere', 'fp32'), false);
    // A float32-only device, as webgpu declares itself (WGSL has no bf16): no bfloat16 entries.
    registerBackend({ ...jsBackend, name: 'float32-only-test', device: 'float32-only-test', dtypes: ['float32'], bfloat16: undefined });
    assert.equal(supportsPrecision('float32-only-test', 'fp32'), true);
    assert.equal(supportsPrecision('float32-only-test', 'bf16'), false);
    assert.deepEqual(resolveAutoPrecision('float32-only-test'), {
      precision: 'fp32', instructions: [], fp32Ms: null, bf16Ms: null, reason: 'the float32-only-test device computes in fp32 only',
    });
  });
});
