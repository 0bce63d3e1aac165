/**
 * Finding the Python a comparison test runs its reference in — not a test file. The packages are
 * looked up (importlib's find_spec), not imported: `import torch, transformers` alone costs a couple
 * of seconds of CPU, and the comparison itself imports them again. A Python whose packages are
 * installed but do not import then fails the comparison with Python's own error instead of skipping
 * it, which is what CI wants anyway.
 */
import { spawnSync } from 'node:child_process';

const PROBE = `
import importlib.metadata as md, importlib.util as u, sys
mods, torch_major = sys.argv[1].split(','), int(sys.argv[2])
if not all(u.find_spec(m) for m in mods): sys.exit(1)
if torch_major and int(md.version('torch').split('.')[0]) < torch_major: sys.exit(1)
`;

/** Whether `python` has every module of `modules` (and, with `torchMajorAtLeast`, a torch that new). */
export function pythonHas(python: string, modules: readonly string[], opts: { torchMajorAtLeast?: number } = {}): boolean {
  const r = spawnSync(python, ['-c', PROBE, modules.join(','), String(opts.torchMajorAtLeast ?? 0)], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0;
}

/** The first of `candidates` (unset ones skipped) that has `modules`, else undefined. */
export function findPython(candidates: ReadonlyArray<string | undefined>, modules: readonly string[], opts: { torchMajorAtLeast?: number } = {}): string | undefined {
  return candidates.find((p): p is string => !!p && pythonHas(p, modules, opts));
}
