/**
 * How the native backend sets up OpenMP's idle threads: libgomp reads OMP_WAIT_POLICY and
 * GOMP_SPINCOUNT once, when the addon loads, so the loader sets them for that moment (a short spin,
 * then sleep) unless the user chose either, and removes what it set. Read back from libgomp itself
 * (OMP_DISPLAY_ENV=verbose) in a child that loads the addon.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { OPENMP_SPIN_COUNT, nativeInternals } from '../../../src/tensor/backends/native.js';

const nativeModule = fileURLToPath(new URL('../../../src/tensor/backends/native.js', import.meta.url));
const internals = nativeInternals();
const skip = internals === null
  ? (process.env.CI === 'true' ? false : 'native addon not built')
  : !internals.libraries.openmp ? 'addon built without OpenMP' : false;

interface Seen { policy: string; spins: string; envAfter: { policy: string | null; spins: string | null } }

/** Loads the addon in a child with `env` added; what libgomp says it read, and the variables left after. */
function loadWith(env: Record<string, string>): Seen {
  const script = `const m = await import(${JSON.stringify(nativeModule)}); m.nativeInternals();
console.log(JSON.stringify({ policy: process.env.OMP_WAIT_POLICY ?? null, spins: process.env.GOMP_SPINCOUNT ?? null }));`;
  const clean = { ...process.env };
  delete clean.OMP_WAIT_POLICY;
  delete clean.GOMP_SPINCOUNT;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...clean, ...env, OMP_DISPLAY_ENV: 'verbose' }, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const shown = (name: string): string => {
    const m = new RegExp(`${name} = '([^']*)'`).exec(r.stderr);
    assert.ok(m, `libgomp printed no ${name}:\n${r.stderr}`);
    return m[1];
  };
  return { policy: shown('OMP_WAIT_POLICY'), spins: shown('GOMP_SPINCOUNT'), envAfter: JSON.parse(r.stdout.trim().split('\n').pop()!) };
}

describe('OpenMP wait policy at addon load', { skip }, () => {
  it('passive with a short spin by default, and the variables gone once loaded', () => {
    const seen = loadWith({});
    assert.equal(seen.policy, 'PASSIVE');
    assert.equal(seen.spins, String(OPENMP_SPIN_COUNT));
    assert.deepEqual(seen.envAfter, { policy: null, spins: null });
  });

  it("keeps the user's wait policy, and libgomp's spin count for it", () => {
    const seen = loadWith({ OMP_WAIT_POLICY: 'active' });
    assert.equal(seen.policy, 'ACTIVE');
    assert.notEqual(seen.spins, String(OPENMP_SPIN_COUNT));
    assert.deepEqual(seen.envAfter, { policy: 'active', spins: null });
  });

  it("keeps the user's spin count (sleeping after it)", () => {
    const seen = loadWith({ GOMP_SPINCOUNT: '777' });
    assert.deepEqual([seen.policy, seen.spins], ['PASSIVE', '777']);
    assert.deepEqual(seen.envAfter, { policy: null, spins: '777' });
  });
});
