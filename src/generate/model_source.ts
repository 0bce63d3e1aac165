/**
 * What `--model SRC` names, for generate / chat / serve: a Hugging Face folder (config.json with the
 * model's architecture), a model file this project writes (`--save x.smol`, `x.safetensors`, or a
 * training checkpoint), or a run's folder (experiments/NAME, whose config.json is the run's) — for a
 * run, its newest checkpoint or saved model, whichever holds more steps, and the tokenizer it
 * trained with.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { readJsonObjectFile } from '../util/json_file.js';

export class ModelSourceError extends Error {
  constructor(readonly source: string, message: string) {
    super(`${source}: ${message}`);
    this.name = 'ModelSourceError';
  }
}

/** A source resolved: where the weights are and, for a run, the tokenizer it trained with. */
export interface ResolvedSource {
  /** A Hugging Face folder, or a model / checkpoint file. */
  kind: 'folder' | 'file';
  path: string;
  /** Present when the source was a run's folder. */
  run?: RunRecord;
}

/** What a run's folder says about the model it trained. */
export interface RunRecord {
  dir: string;
  /** The weights chosen (the newest checkpoint or saved model) and its step. */
  step: number;
  /** The run's --tokenizer (resolved where it was a path), its --init folder, or null when it named none. */
  tokenizer: string | null;
}

const RUN_SCHEMA = 'smolcluster-config';
const CHECKPOINT_NAME = /^ckpt-(\d{8,})\.smolckpt$/;

/** Resolves `source` to the weights it names (refused by name when it names none). */
export function resolveModelSource(source: string): ResolvedSource {
  if (!existsSync(source)) throw new ModelSourceError(source, 'not found (--model takes a Hugging Face model folder, a model file saved by smolcluster, or a run\'s folder under experiments/)');
  if (!statSync(source).isDirectory()) return { kind: 'file', path: source };
  const config = readJsonObject(join(source, 'config.json'));
  if (config?.schema === RUN_SCHEMA) return runWeights(source, config);
  if (config) return { kind: 'folder', path: source };
  throw new ModelSourceError(source, 'is a folder without a config.json: neither a Hugging Face model folder nor a run\'s folder');
}

/** A run's newest weights: its checkpoints and saved model (events.jsonl, then the checkpoints folder). */
function runWeights(dir: string, config: Record<string, unknown>): ResolvedSource {
  const candidates = [...recordedWeights(dir), ...checkpointFiles(join(dir, 'checkpoints'))];
  if (candidates.length === 0) {
    throw new ModelSourceError(dir, 'is a run\'s folder without a checkpoint or a saved model yet (train with --checkpoint-every N or --save FILE)');
  }
  // The most steps; at a tie the saved model (written after the run's last step, gathered whole).
  candidates.sort((a, b) => b.step - a.step || Number(b.saved) - Number(a.saved));
  const best = candidates[0];
  const run: RunRecord = { dir, step: best.step, tokenizer: runTokenizer(dir, config) };
  return { kind: best.folder ? 'folder' : 'file', path: best.path, run };
}

interface Weights {
  path: string;
  step: number;
  saved: boolean;
  folder: boolean;
}

/** The checkpoints and saved models events.jsonl records, each where it still exists. */
function recordedWeights(dir: string): Weights[] {
  const out: Weights[] = [];
  for (const e of readEvents(join(dir, 'events.jsonl'))) {
    if ((e.kind !== 'checkpoint' && e.kind !== 'model_saved') || typeof e.file !== 'string' || typeof e.step !== 'number') continue;
    const path = locate(dir, e.file, e.kind === 'checkpoint');
    if (path) out.push({ path, step: e.step, saved: e.kind === 'model_saved', folder: statSync(path).isDirectory() });
  }
  return out;
}

/** A path a run recorded (relative to where it ran: usually the experiments folder's parent). */
function locate(runDir: string, file: string, checkpoint: boolean): string | null {
  const tries = isAbsolute(file) ? [file] : [file, resolve(runDir, '..', '..', file)];
  if (checkpoint) tries.push(join(runDir, 'checkpoints', basename(file)));
  return tries.find((p) => existsSync(p)) ?? null;
}

function checkpointFiles(dir: string): Weights[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const m = CHECKPOINT_NAME.exec(n);
    return m ? [{ path: join(dir, n), step: Number(m[1]), saved: false, folder: false }] : [];
  });
}

/** The tokenizer a run trained with: its --tokenizer, else its --init folder's, else gpt2 for text. */
function runTokenizer(dir: string, config: Record<string, unknown>): string | null {
  const where = (p: string): string => (isAbsolute(p) || existsSync(p) ? p : resolve(dir, '..', '..', p));
  if (typeof config.tokenizer === 'string') return ['gpt2', 'bytes'].includes(config.tokenizer) || config.tokenizer.startsWith('npm:') ? config.tokenizer : where(config.tokenizer);
  if (typeof config.init === 'string' && existsSync(join(where(config.init), 'tokenizer.json'))) return where(config.init);
  return config.dataset === 'text' ? 'gpt2' : null;
}

function readEvents(file: string): Record<string, unknown>[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').flatMap((line) => {
    try {
      const e = JSON.parse(line) as unknown;
      return typeof e === 'object' && e !== null ? [e as Record<string, unknown>] : [];
    } catch {
      return []; // a line cut short by a crash
    }
  });
}

/** A JSON object file, or null when absent; malformed ones refused by name. */
export function readJsonObject(file: string): Record<string, unknown> | null {
  return readJsonObjectFile(file, (f, why) => new ModelSourceError(f, why));
}
