import { spawnSync } from 'node:child_process';

/**
 * Finding a Python that can import a module (PyTorch for the reference figures).
 *
 * Debian's `python3-torch` is importable only from the system interpreter (/usr/bin/python3), which
 * need not be the first `python3` on PATH (pyenv, venvs). Candidates, in order: $SMOLCLUSTER_PYTHON,
 * /usr/bin/python3, python3 on PATH; the first that imports the module wins.
 */
export interface PythonModule {
  python: string;
  pythonVersion: string;
  module: string;
  version: string;
}

export type PythonProbe = { found: PythonModule; reason: null } | { found: null; reason: string };

export function pythonCandidates(): string[] {
  const list = [process.env.SMOLCLUSTER_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p);
  return [...new Set(list)];
}

export function findPythonWith(module: string, candidates = pythonCandidates()): PythonProbe {
  if (!/^[A-Za-z_][\w.]*$/.test(module)) throw new Error(`findPythonWith: bad module name ${module}`);
  const code =
    `import json, platform, ${module} as m\n` +
    `print(json.dumps({"version": str(getattr(m, "__version__", "")), "python": platform.python_version()}))`;
  const tried: string[] = [];
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', code], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) {
      try {
        const info = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { version: string; python: string };
        return { found: { python, pythonVersion: info.python, module, version: info.version }, reason: null };
      } catch {
        /* fall through: not a usable answer */
      }
    }
    const why = r.error ? (r.error as NodeJS.ErrnoException).code ?? r.error.message : `no module ${module}`;
    tried.push(`${python} (${why})`);
  }
  return { found: null, reason: `no Python with ${module}: tried ${tried.join(', ')}` };
}
