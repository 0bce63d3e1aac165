#!/usr/bin/env node
/**
 * Build-time probe for the native addon's kernel libraries, called from binding.gyp as
 *   node scripts/detect-native-libs.mjs dnnl|cblas|openmp
 * Prints 1 when the library can be compiled AND linked against, else 0 (gyp reads the output as a
 * variable). A probe is a tiny program compiled with the same compiler node-gyp will use, so a
 * header without its library (or the reverse) counts as absent.
 *
 * SMOLCLUSTER_NATIVE_LIBS=dnnl,cblas,openmp (any subset, or "none") restricts what may be used;
 * unset means "whatever is found". Non-system installs are found through the compiler's usual
 * CPATH / LIBRARY_PATH variables.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PROBES = {
  dnnl: {
    source: '#include <oneapi/dnnl/dnnl.h>\nint main(){ return dnnl_version() == 0; }\n',
    flags: ['-ldnnl'],
  },
  cblas:
    process.platform === 'darwin'
      ? {
          source: '#include <Accelerate/Accelerate.h>\nint main(){ float a=1,b=1,c=0; cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,1,1,1,1.f,&a,1,&b,1,0.f,&c,1); return c != 1; }\n',
          flags: ['-framework', 'Accelerate'],
        }
      : {
          source: '#include <cblas.h>\nextern "C" void openblas_set_num_threads(int);\nint main(){ openblas_set_num_threads(1); float a=1,b=1,c=0; cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,1,1,1,1.f,&a,1,&b,1,0.f,&c,1); return c != 1; }\n',
          flags: ['-lopenblas'],
        },
  openmp: {
    source: '#include <omp.h>\nint main(){ int n = 0;\n#pragma omp parallel reduction(+:n)\n n += 1;\n return n < 1 || omp_get_max_threads() < 1; }\n',
    flags: ['-fopenmp'],
  },
};

function allowed(lib) {
  const spec = process.env.SMOLCLUSTER_NATIVE_LIBS;
  if (spec === undefined || spec.trim() === '') return true;
  return spec.split(',').map((s) => s.trim().toLowerCase()).includes(lib);
}

/** Compiles, links and runs the probe; any failure means "absent". */
function probe(lib) {
  const spec = PROBES[lib];
  if (!spec || process.platform === 'win32' || !allowed(lib)) return false;
  const dir = mkdtempSync(join(tmpdir(), 'smolcluster-probe-'));
  try {
    const src = join(dir, 'probe.cc');
    const exe = join(dir, 'probe');
    writeFileSync(src, spec.source);
    const cxx = (process.env.CXX || 'c++').split(' ');
    const build = spawnSync(cxx[0], [...cxx.slice(1), src, '-o', exe, ...spec.flags], { stdio: 'ignore' });
    if (build.status !== 0) return false;
    return spawnSync(exe, [], { stdio: 'ignore', timeout: 20_000 }).status === 0;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const lib = process.argv[2];
if (!lib || !(lib in PROBES)) {
  process.stderr.write(`usage: detect-native-libs.mjs ${Object.keys(PROBES).join('|')}\n`);
  process.exit(2);
}
process.stdout.write(probe(lib) ? '1' : '0');
