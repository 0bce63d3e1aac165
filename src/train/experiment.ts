import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic_file.js';
import { ConfigError } from '../util/errors.js';

/**
 * experiments/<name>/: the resolved config, metrics.jsonl (every rank, every step) and result.json.
 * The name comes from --name or is generated from the model and the start time.
 */
export interface ExperimentPaths {
  dir: string;
  config: string;
  metrics: string;
  result: string;
}

export function experimentName(model: string, at: Date = new Date()): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z').replace('T', '-');
  return `${model}-${stamp}`;
}

export function experimentPaths(root: string, name: string): ExperimentPaths {
  // No separators and no "." or "..": a run's folder is always inside the experiments folder.
  if (!/^[\w.@+-]+$/.test(name) || /^\.+$/.test(name)) {
    throw new ConfigError('command line', '--name', `experiment name "${name}" may only contain letters, digits and . _ - + @, and may not be . or ..`);
  }
  const dir = join(root, name);
  return { dir, config: join(dir, 'config.json'), metrics: join(dir, 'metrics.jsonl'), result: join(dir, 'result.json') };
}

/**
 * Creates (or resets, for a rerun under the same name) the folder: config written, metrics emptied —
 * unless the run resumes, which keeps the records of the steps before its checkpoint.
 */
export function createExperiment(paths: ExperimentPaths, config: object, opts: { resuming?: boolean } = {}): void {
  mkdirSync(paths.dir, { recursive: true });
  writeFileAtomic(paths.config, `${JSON.stringify(config, null, 2)}\n`);
  if (!opts.resuming) writeFileSync(paths.metrics, '');
  rmSync(paths.result, { force: true });
}
