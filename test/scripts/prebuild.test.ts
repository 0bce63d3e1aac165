/**
 * The npm package trains on oneDNN with no install script and no system oneDNN (issue 23 §7):
 * scripts/prebuild.mjs builds prebuilds/linux-x64 (the addon with oneDNN, libgomp and libOpenCL
 * beside it), `npm pack` packs it, `npm install --ignore-scripts --offline` installs the tarball into
 * a temp project, and in a mount namespace where every copy of those libraries the system's loader
 * knows (ldconfig -p) is covered by an empty file, with LD_LIBRARY_PATH unset, the installed
 * `smolcluster` reports the bundled addon and trains a few MNIST steps of the CNN on the native
 * backend. A control in the same namespace shows the system's oneDNN cannot be loaded there.
 *
 * Needs root (unshare -m, mount --bind) on linux-x64, npm's cache as `npm ci` leaves it, and
 * libdnnl-dev to build the prebuild: elsewhere it skips with the reason; under CI=true it fails.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TARGET = 'linux-x64';
/** The libraries the prebuild bundles; the namespace hides the system's copies of each. */
const BUNDLED = ['libdnnl.so.2', 'libgomp.so.1', 'libOpenCL.so.1'];
const temps: string[] = [];
/** The arm64 Node scripts/arm64-build.sh fetches (its default version), which runs under qemu through binfmt. */
const ARM64_NODE = join(ROOT, '.arm64', `node-${process.env.ARM64_NODE_VERSION ?? '20.20.2'}`, 'bin', 'node');
/** The consumer project the first test installed the tarball into, and the tarball's files; the second reuses them. */
let installed: { project: string; files: Set<string> } | null = null;
after(() => { for (const t of temps) rmSync(t, { recursive: true, force: true }); });

/** Skips with the reason, or fails under CI=true, where everything this test needs is installed. */
function unavailable(t: TestContext, why: string): void {
  if (process.env.CI === 'true') assert.fail(`${why} (required under CI=true)`);
  t.skip(why);
}

/** The environment of a user's shell: no npm lifecycle variables, no library path, no backend override. */
function userEnv(): NodeJS.ProcessEnv {
  // npm's lifecycle variables go (npm test sets them); where npm keeps its cache stays.
  const keep = new Set(['npm_config_cache', 'npm_config_userconfig']);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_') || keep.has(k)));
  for (const k of ['LD_LIBRARY_PATH', 'LD_PRELOAD', 'SMOLCLUSTER_NATIVE_ADDON', 'SMOLCLUSTER_BACKEND', 'OMP_NUM_THREADS']) delete env[k];
  env.PATH = `${dirname(process.execPath)}${delimiter}${env.PATH ?? ''}`;
  return env;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env: userEnv(), encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
}

function tail(r: SpawnSyncReturns<string>): string {
  return `${r.error?.message ?? ''}${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-8).join('\n');
}

/** A project whose lockfile pins smolcluster's dependencies as the repo's does, so npm resolves them from its cache. */
function consumerProject(dir: string): void {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { name: string; packages: Record<string, unknown> };
  const deps = { dependencies: pkg.dependencies, optionalDependencies: pkg.optionalDependencies };
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, ...deps }, null, 2));
  lock.name = 'consumer';
  lock.packages[''] = { name: 'consumer', ...deps };
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(lock, null, 2));
}

/** Runs in the mount namespace: hide the system's copies, show the control, then use the installed package. */
const NAMESPACE_SCRIPT = `set -u
mount --make-rprivate /
: > "$WORK/empty"
for f in $(ldconfig -p | awk '/${BUNDLED.join('|')}/ { print $NF }') \\
         $(for l in ${BUNDLED.join(' ')}; do echo /usr/lib/x86_64-linux-gnu/$l /usr/local/lib/$l; done); do
  [ -e "$f" ] || continue
  real=$(readlink -f "$f")
  grep -qx "$real" "$WORK/hidden" 2>/dev/null && continue
  mount --bind "$WORK/empty" "$real" && echo "$real" >> "$WORK/hidden"
done
unset LD_LIBRARY_PATH
for l in ${BUNDLED.join(' ')}; do
  node -e "try { process.dlopen({ exports: {} }, '$l'); } catch (e) { console.log('$l: ' + e.message.split('\\\\n')[0]); }" >> "$WORK/control.txt" 2>&1
done
ldd "$ADDON" > "$WORK/ldd.txt" 2>&1
SMOLCLUSTER_BACKEND=native "$BIN" info --json > "$WORK/info.json" 2> "$WORK/info.err"
echo "info exit $?"
cd "$WORK"
SMOLCLUSTER_BACKEND=native "$BIN" train --model cnn --max-steps 5 --threads 1 --eval-every 0 \\
  --experiments-dir "$WORK/exp" --name prebuilt > "$WORK/train.out" 2>&1
echo "train exit $?"
`;

test('the packed package installs with --ignore-scripts and trains on its bundled oneDNN with the system oneDNN hidden', { timeout: 600_000 }, (t) => {
  if (`${process.platform}-${process.arch}` !== TARGET) {
    t.skip(`prebuilds are built for ${TARGET} only (this is ${process.platform}-${process.arch})`);
    return;
  }
  if (process.getuid?.() !== 0) return unavailable(t, 'needs root for a mount namespace (unshare -m) that hides the system oneDNN');
  if (spawnSync('unshare', ['--version']).error) return unavailable(t, 'unshare (util-linux) not found');

  const prebuild = run(process.execPath, [join(ROOT, 'scripts', 'prebuild.mjs')], ROOT, 900_000);
  if (prebuild.status !== 0) return unavailable(t, `scripts/prebuild.mjs failed: ${tail(prebuild)}`);
  const manifest = JSON.parse(readFileSync(join(ROOT, 'prebuilds', TARGET, 'prebuild.json'), 'utf8')) as { bundled: { file: string; package: string }[] };
  const dnnlPackage = manifest.bundled.find((b) => b.file === 'libdnnl.so.2')?.package ?? '';
  const dnnlVersion = /(\d+\.\d+\.\d+)/.exec(dnnlPackage)?.[1];
  assert.ok(dnnlVersion, `prebuild.json names no oneDNN version: ${dnnlPackage}`);

  const work = mkdtempSync(join(tmpdir(), 'smolcluster-prebuilt-'));
  temps.push(work);
  // prepack (the prebuild) ran above, and dist/ is the compiled tree these tests run from.
  const pack = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT, 300_000);
  assert.equal(pack.status, 0, tail(pack));
  const packed = (JSON.parse(pack.stdout) as { filename: string; size: number; unpackedSize: number; files: { path: string }[] }[])[0];
  const files = new Set(packed.files.map((f) => f.path));
  for (const f of ['smolcluster.node', 'smolcluster.node.sources', 'prebuild.json', ...BUNDLED, 'LICENSES/Apache-2.0', 'LICENSES/libdnnl2.copyright']) {
    assert.ok(files.has(`prebuilds/${TARGET}/${f}`), `the tarball lacks prebuilds/${TARGET}/${f}`);
  }
  for (const f of files) assert.ok(!/^(build|dist\/test|dist\/bench|test|node_modules|experiments)\//.test(f), `the tarball ships ${f}`);
  t.diagnostic(`tarball ${(packed.size / 2 ** 20).toFixed(1)} MiB, unpacked ${(packed.unpackedSize / 2 ** 20).toFixed(1)} MiB, ${files.size} files`);

  const project = join(work, 'consumer');
  installed = { project, files };
  mkdirSync(project);
  consumerProject(project);
  const install = run('npm', ['install', '--ignore-scripts', '--offline', '--no-audit', '--no-fund', join(work, packed.filename)], project, 300_000);
  if (install.status !== 0 && /ENOTCACHED/.test(install.stderr)) {
    return unavailable(t, `npm's cache lacks smolcluster's dependencies (run npm ci first): ${tail(install)}`);
  }
  assert.equal(install.status, 0, tail(install));
  const pkgDir = join(project, 'node_modules', 'smolcluster');
  const prebuiltDir = join(pkgDir, 'prebuilds', TARGET);
  assert.ok(!existsSync(join(pkgDir, 'build')), 'no install script ran, so there is no build/');

  const scriptPath = join(work, 'namespace.sh');
  writeFileSync(scriptPath, NAMESPACE_SCRIPT);
  const env = { ...userEnv(), WORK: work, ADDON: join(prebuiltDir, 'smolcluster.node'), BIN: join(project, 'node_modules', '.bin', 'smolcluster') };
  const ns = spawnSync('unshare', ['-m', 'sh', scriptPath], { cwd: work, env, encoding: 'utf8', timeout: 300_000 });
  if (/^unshare: /m.test(ns.stderr)) return unavailable(t, `unshare -m failed: ${ns.stderr.trim()}`);
  assert.equal(ns.status, 0, tail(ns));
  const hidden = existsSync(join(work, 'hidden')) ? readFileSync(join(work, 'hidden'), 'utf8').trim().split('\n') : [];
  t.diagnostic(`hidden: ${hidden.join(', ') || 'none (no system copies)'}`);

  // The control: each library, asked for by soname as the loader would, cannot be loaded from the system here
  // (a library that loads fails only later, with "did not self-register", being no addon).
  const control = readFileSync(join(work, 'control.txt'), 'utf8').trim().split('\n');
  assert.equal(control.length, BUNDLED.length, control.join('\n'));
  for (const line of control) {
    assert.doesNotMatch(line, /self-register/, `a system copy still loads in the namespace: ${line}`);
    assert.match(line, /file too short|cannot open shared object|No such file/, line);
  }

  const ldd = readFileSync(join(work, 'ldd.txt'), 'utf8');
  for (const lib of BUNDLED) assert.ok(ldd.includes(`${lib} => ${join(prebuiltDir, lib)} `), `ldd does not resolve ${lib} to the bundled copy:\n${ldd}`);

  assert.match(ns.stdout, /info exit 0/, readFileSync(join(work, 'info.err'), 'utf8'));
  const info = JSON.parse(readFileSync(join(work, 'info.json'), 'utf8')) as { backend: string; addon: { path: string; origin: string; dnnl_library: string; cpu?: { arch: string; level: string; levels: string[] } } | null };
  const { cpu, ...addon } = info.addon ?? {};
  assert.deepEqual(addon, { path: join(prebuiltDir, 'smolcluster.node'), origin: 'prebuilt', dnnl_library: join(prebuiltDir, 'libdnnl.so.2') });
  // The installed addon reports its CPU table (the level its kernels run at).
  assert.equal(cpu?.arch, 'x64');
  assert.ok(cpu.levels.includes(cpu.level), `cpu level ${cpu.level}`);

  assert.match(ns.stdout, /train exit 0/, readFileSync(join(work, 'train.out'), 'utf8'));
  const runDir = join(work, 'exp', readdirSync(join(work, 'exp'))[0]);
  const result = JSON.parse(readFileSync(join(runDir, 'result.json'), 'utf8')) as { backend: string; steps: number; final_loss: number; samples_per_sec: number };
  assert.ok(result.backend.startsWith(`oneDNN ${dnnlVersion} `), `trained on ${result.backend}, not the bundled oneDNN ${dnnlVersion}`);
  assert.equal(result.steps, 5);
  assert.ok(Number.isFinite(result.final_loss), `final loss ${result.final_loss}`);
  t.diagnostic(`trained: ${result.backend}, ${result.samples_per_sec.toFixed(0)} samples/s over 5 CNN steps`);
});

test('the package carries the linux-arm64 prebuild, and the arm64 Node under qemu runs the installed copy', { timeout: 300_000 }, (t) => {
  const dir = join(ROOT, 'prebuilds', 'linux-arm64');
  // .ci/run builds it (scripts/prebuild.mjs --target linux-arm64) before the tests.
  if (!existsSync(join(dir, 'prebuild.json'))) return unavailable(t, 'no prebuilds/linux-arm64 (node scripts/prebuild.mjs --target linux-arm64 builds it)');
  if (!installed) return unavailable(t, 'the linux-x64 test above did not install the package');
  if (!existsSync(ARM64_NODE)) return unavailable(t, `no arm64 Node at ${ARM64_NODE} (scripts/arm64-build.sh fetches it)`);
  const manifest = JSON.parse(readFileSync(join(dir, 'prebuild.json'), 'utf8')) as { target: string; bundled: { file: string; licenses: string[] }[] };
  assert.equal(manifest.target, 'linux-arm64');
  assert.ok(manifest.bundled.some((b) => b.file === 'libopenblas.so.0'), 'the arm64 prebuild bundles no OpenBLAS');
  for (const f of ['smolcluster.node', 'smolcluster.node.sources', 'prebuild.json', ...manifest.bundled.flatMap((b) => [b.file, ...b.licenses])]) {
    assert.ok(installed.files.has(`prebuilds/linux-arm64/${f}`), `the tarball lacks prebuilds/linux-arm64/${f}`);
  }
  // The installed package's own loader, in an arm64 process: it takes prebuilds/linux-arm64 (platform-arch), not build/.
  const bin = join(installed.project, 'node_modules', 'smolcluster', 'dist', 'src', 'cli', 'main.js');
  const info = spawnSync(ARM64_NODE, [bin, 'info', '--json'],
    { cwd: installed.project, env: { ...userEnv(), SMOLCLUSTER_BACKEND: 'native' }, encoding: 'utf8', timeout: 240_000 });
  assert.equal(info.status, 0, tail(info));
  const report = JSON.parse(info.stdout) as { backend: string; addon: { path: string; origin: string; cpu: { arch: string; level: string } } | null };
  const installedDir = join(installed.project, 'node_modules', 'smolcluster', 'prebuilds', 'linux-arm64');
  assert.equal(report.addon?.path, join(installedDir, 'smolcluster.node'));
  assert.equal(report.addon?.origin, 'prebuilt');
  assert.equal(report.addon?.cpu.arch, 'arm64');
  assert.match(report.backend, /OpenBLAS/);
  t.diagnostic(`arm64 under qemu: ${report.backend}, level ${report.addon?.cpu.level}`);
});
