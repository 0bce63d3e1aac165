/**
 * The native CPU feature table (src/native/cpu_features.cc) and its SMOLCLUSTER_CPU cap: the table
 * names this architecture's levels; a cap gives exactly that level's features (or the CPU's own,
 * where it reaches less); the kernels and oneDNN then take the capped paths (the thin fp32 product
 * needs avx512, the bf16 kernels avx512-bf16); a name that is no level refuses to load, and the
 * backend choice fails naming the variable rather than falling back to js. Each capped case runs
 * in a child process: the table is read once per process.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { type CpuTable, loadNativeBackend, nativeCpuTable } from '../../../src/tensor/backends/native.js';

const loaded = loadNativeBackend();
const skip = loaded.backend ? false : process.env.CI === 'true' ? false : `native addon unavailable: ${loaded.reason}`;
/**
 * The cases that start children set each child's SMOLCLUSTER_CPU themselves, so this process's own
 * cap changes nothing in them: they run where this process is uncapped, not again in each rerun
 * at a lower level (scripts/cpu-levels.sh, the arm64 check), where the first case still checks
 * the capped table.
 */
const uncapped = !process.env.SMOLCLUSTER_CPU || process.env.SMOLCLUSTER_CPU === 'native';
const childCases = uncapped ? {} : { skip: `the children set their own cap (this process: SMOLCLUSTER_CPU=${process.env.SMOLCLUSTER_CPU}); the uncapped run has them` };
const here = dirname(fileURLToPath(import.meta.url));
const nativeModule = resolve(here, '..', '..', '..', 'src', 'tensor', 'backends', 'native.js');
const dispatchModule = resolve(here, '..', '..', '..', 'src', 'tensor', 'dispatch.js');

const LEVELS: Record<string, string[]> = {
  x64: ['generic', 'avx2', 'avx512', 'avx512-vnni', 'avx512-bf16', 'amx'],
  arm64: ['generic', 'neon', 'neon-dotprod', 'neon-bf16'],
};

/** The features each level allows, as the table names them. */
const ALLOWS: Record<string, string[]> = {
  generic: [],
  avx2: ['avx2'],
  avx512: ['avx2', 'avx512'],
  'avx512-vnni': ['avx2', 'avx512', 'avx512vnni'],
  'avx512-bf16': ['avx2', 'avx512', 'avx512vnni', 'avx512bf16'],
  amx: ['avx2', 'avx512', 'avx512vnni', 'avx512bf16', 'amxBf16', 'amxInt8'],
  neon: ['neon'],
  'neon-dotprod': ['neon', 'dotprod'],
  'neon-bf16': ['neon', 'dotprod', 'i8mm', 'bf16'],
};

interface Probe { cpu: CpuTable; thinF32: string; bf16Gemm: string }

type ProbeRun = { status: number | null; out: Probe | null; stderr: string };
const probes = new Map<string, ProbeRun>();

/** In a child with SMOLCLUSTER_CPU = cap: the table, the engine of a 1-row fp32 x·Wᵀ and the bf16 GEMM's implementation (one child per cap: the cases share it). */
function probe(cap: string): ProbeRun {
  if (!probes.has(cap)) probes.set(cap, probeChild(cap));
  return probes.get(cap)!;
}

function probeChild(cap: string): ProbeRun {
  const script = `
    const n = await import(${JSON.stringify(nativeModule)});
    const internals = n.nativeInternals();
    const addon = n.nativeAddonExports();
    const [M, N, K] = [1, 64, 256];
    addon.gemm(false, true, M, N, K, 1, new Float32Array(M * K), 0, new Float32Array(N * K), 0, 0, new Float32Array(M * N), 0, 1, null);
    const thinF32 = internals.lastGemmEngine();
    const [bM, bN, bK] = [64, 64, 256];
    addon.gemmBf16(false, true, bM, bN, bK, 1, new Uint16Array(bM * bK), 0, new Uint16Array(bN * bK), 0, 0, new Float32Array(bM * bN), 0, 1, null);
    console.log(JSON.stringify({ cpu: n.nativeCpuTable(), thinF32, bf16Gemm: internals.lastBf16GemmImpl() }));`;
  const env = { ...process.env, SMOLCLUSTER_CPU: cap };
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: r.status === 0 ? JSON.parse(r.stdout.trim().split('\n').pop()!) as Probe : null, stderr: r.stderr };
}

const on = (features: Record<string, boolean>): string[] => Object.keys(features).filter((f) => features[f]).sort();

describe('the native CPU feature table', { skip }, () => {
  test('names this architecture\'s levels; the level is the highest whose features the table has', () => {
    const cpu = nativeCpuTable()!;
    assert.equal(cpu.arch, process.arch);
    assert.deepEqual(cpu.levels, LEVELS[process.arch]);
    assert.ok(cpu.levels.includes(cpu.level) && cpu.levels.includes(cpu.detectedLevel), `${cpu.level} / ${cpu.detectedLevel}`);
    for (const f of ALLOWS[cpu.level]) assert.ok(cpu.features[f], `${cpu.level} needs ${f}`);
    const next = cpu.levels[cpu.levels.indexOf(cpu.level) + 1];
    if (next) assert.ok(ALLOWS[next].some((f) => !cpu.features[f]), `the table has all of ${next}'s features but says ${cpu.level}`);
    // Unless this process was started capped, what kernels may use is what the CPU has.
    if (uncapped) assert.deepEqual(cpu.features, cpu.detected);
  });

  test('SMOLCLUSTER_CPU caps the table at each level: exactly its features where the CPU reaches it, the CPU\'s own above', childCases, () => {
    const cpu = nativeCpuTable()!;
    const reach = cpu.levels.indexOf(cpu.detectedLevel);
    for (const [i, level] of cpu.levels.entries()) {
      const r = probe(level);
      assert.equal(r.status, 0, `${level}: ${r.stderr}`);
      const got = r.out!.cpu;
      assert.deepEqual(got.detected, cpu.detected, `${level}: the hardware's features stay reported`);
      assert.equal(got.level, i <= reach ? level : cpu.detectedLevel, level);
      const capped = on(got.features);
      if (i <= reach) assert.deepEqual(capped, [...ALLOWS[level]].sort(), level);
      else assert.deepEqual(capped, on(cpu.detected), level);
    }
    assert.deepEqual(probe('native').out!.cpu.features, cpu.detected, 'native: no cap');
  });

  test('the kernels and oneDNN follow the cap: the thin fp32 product from avx512 on, oneDNN\'s bf16 kernels only with bf16 instructions', childCases, () => {
    const cpu = nativeCpuTable()!;
    if (cpu.arch !== 'x64') return; // the arm64 kernels' dispatch: test/tensor/backends/neon_kernels.test.ts
    const reach = cpu.levels.indexOf(cpu.detectedLevel);
    for (const level of cpu.levels.slice(0, reach + 1)) {
      const { out, stderr } = probe(level);
      assert.ok(out, `${level}: ${stderr}`);
      const avx512 = ALLOWS[level].includes('avx512');
      assert.equal(out.thinF32 === 'thin', avx512, `${level}: a 1-row x·Wᵀ ran ${out.thinF32}`);
      const bf16 = ALLOWS[level].includes('avx512bf16');
      // oneDNN 2.6.3 names the ISA in brgemm's implementations; its AVX-512 emulation is gemm:jit; below AVX-512 it refuses (we widen to fp32).
      if (bf16) assert.match(out.bf16Gemm, /bf16|amx/, `${level}: ${out.bf16Gemm}`);
      else assert.doesNotMatch(out.bf16Gemm, /bf16|amx/, `${level}: ${out.bf16Gemm}`);
      if (!avx512) assert.match(out.bf16Gemm, /refused|reference|fallback/, `${level}: ${out.bf16Gemm}`);
    }
  });

  test('a name that is no level of this architecture stops the backend choice, naming the variable and the levels', childCases, () => {
    const other = process.arch === 'arm64' ? 'avx2' : 'neon';
    for (const cap of ['bogus', other]) {
      const env: NodeJS.ProcessEnv = { ...process.env, SMOLCLUSTER_CPU: cap };
      delete env.SMOLCLUSTER_BACKEND;
      const script = `import(${JSON.stringify(dispatchModule)}).then((d) => { d.backend(); console.log('ran on', d.backend().name); })`;
      const r = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8', timeout: 60_000 });
      assert.notEqual(r.status, 0, `${cap}: ${r.stdout}`);
      assert.match(r.stderr, new RegExp(`SMOLCLUSTER_CPU=${cap} names no CPU level`));
      assert.match(r.stderr, new RegExp(LEVELS[process.arch].join(', ')));
      assert.doesNotMatch(r.stdout, /ran on/);
    }
  });
});
