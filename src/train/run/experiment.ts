import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hasCheckpoints } from './checkpoints.js';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/atomic_file.js';
import { CONFIG_SCHEMA, CONFIG_SCHEMA_VERSION } from '../../metrics/reader.js';
import { ConfigError } from '../../util/errors.js';
import { snakeCaseKeys } from '../../util/snake_case.js';

/**
 * experiments/<name>/: the resolved config, metrics.jsonl (every rank, every step) and result.json.
 * The name comes from --name or is generated from the model, the start time and a random suffix.
 */
export interface ExperimentPaths {
  dir: string;
  config: string;
  metrics: string;
  result: string;
}

/**
 * `<model>-<UTC time>-<6 hex digits>`: the random suffix keeps two runs started in the same second
 * (one per terminal, or a script's loop) out of each other's folder; one that exists under `root` is
 * never chosen.
 */
export function experimentName(model: string, at: Date = new Date(), root?: string, suffix = (): string => randomBytes(3).toString('hex')): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z').replace('T', '-');
  for (;;) {
    const name = `${model}-${stamp}-${suffix()}`;
    if (root === undefined || !existsSync(join(root, name))) return name;
  }
}

/** What a run leaves in its folder (docs/METRICS.md): any of them means the folder holds a run. */
const RUN_FILES = ['config.json', 'metrics.jsonl', 'events.jsonl', 'result.json', 'trace.json', 'checkpoints'];

/**
 * An explicit --name whose folder already holds a run is refused: reusing it would mix two runs'
 * metrics and checkpoints. --resume continues that run; --overwrite removes it first.
 */
export function claimNamedRun(dir: string, opts: { resume?: string; overwrite?: boolean }): void {
  if (opts.resume !== undefined) return;
  if (opts.overwrite) return rmSync(dir, { recursive: true, force: true });
  let entries: string[];
  try {
    entries = readdirSync(dir).filter((f) => RUN_FILES.includes(f));
  } catch {
    return; // no folder yet
  }
  if (entries.length === 0) return; // new, or holding only files no run wrote (say, the data)
  if (failedBeforeTraining(dir)) return; // nothing to lose: the rerun resets it
  throw new ConfigError('command line', '--name', `${dir} already holds a run (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); choose another --name, continue it with --resume auto, or replace it with --overwrite`);
}

/**
 * A run that ended in failure before it recorded a step (a bad --init, data, or flag found once the
 * folder existed): no result, no checkpoint, no metrics, and a run_end of status failed. Such a
 * folder holds nothing worth keeping, so it does not block rerunning the same --name. A run still
 * going, or killed without its run_end, still does.
 */
export function failedBeforeTraining(dir: string): boolean {
  if (existsSync(join(dir, 'result.json'))) return false;
  if (existsSync(join(dir, 'checkpoints')) && readdirSync(join(dir, 'checkpoints')).length > 0) return false;
  if (readOr(join(dir, 'metrics.jsonl')).trim() !== '') return false;
  return readOr(join(dir, 'events.jsonl')).split('\n').some((line) => {
    try {
      const e = JSON.parse(line) as { kind?: unknown; status?: unknown };
      return e.kind === 'run_end' && e.status === 'failed';
    } catch {
      return false;
    }
  });
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
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
  writeFileAtomic(paths.config, `${JSON.stringify(configFile(config), null, 2)}\n`);
  if (!opts.resuming) writeFileSync(paths.metrics, '');
  rmSync(paths.result, { force: true });
}

/** result.json's text as it is (null: none): what a resumed run that finds nothing to train puts back, createExperiment having removed it. */
export function currentResult(paths: ExperimentPaths): string | null {
  return existsSync(paths.result) ? readFileSync(paths.result, 'utf8') : null;
}

/** config.json: the run's configuration under snake_case keys, named and versioned (docs/METRICS.md). */
export function configFile(config: object): Record<string, unknown> {
  return { schema: CONFIG_SCHEMA, schema_version: CONFIG_SCHEMA_VERSION, ...(snakeCaseKeys(config) as object) };
}

/**
 * `--resume auto` without --name: the newest run of this model under `root` that left checkpoints
 * (the one a Ctrl-C just stopped), or undefined when there is none — a Trainer's
 * resume_from_checkpoint=True looks in its output folder the same way.
 */
export function newestResumableRun(root: string, model: string): string | undefined {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return undefined;
  }
  const runs = names.flatMap((name) => {
    const dir = join(root, name);
    if (!hasCheckpoints(join(dir, 'checkpoints'))) return [];
    try {
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { model?: unknown };
      return config.model === model ? [{ name, at: statSync(join(dir, 'checkpoints')).mtimeMs }] : [];
    } catch {
      return [];
    }
  });
  return runs.sort((a, b) => b.at - a.at)[0]?.name;
}

/** The run `--resume auto` continues when no --name is given (newestResumableRun), said in one line; undefined otherwise. */
export function resumedName(flags: { resume?: string; checkpointDir?: string; experimentsDir: string }, model: string): string | undefined {
  if (flags.resume !== 'auto' || flags.checkpointDir !== undefined) return undefined;
  const name = newestResumableRun(flags.experimentsDir, model);
  if (name) process.stderr.write(`smolcluster: --resume auto: continuing ${join(flags.experimentsDir, name)} (the newest ${model} run with checkpoints; --name picks another)\n`);
  return name;
}
