/**
 * What `--model SRC` names, for generate / chat / serve: a Hugging Face folder (config.json with the
 * model's architecture), a model file this project writes (`--save x.smol`, `x.safetensors`, or a
 * training checkpoint), or a run's folder (experiments/NAME, whose config.json is the run's) — for a
 * run, its newest checkpoint or saved model, whichever holds more steps, and the tokenizer it
 * trained with. A LoRA run's weights are adapters (a checkpoint of its arena, or the PEFT folder
 * --save wrote) on its --init; a PEFT adapter folder's are on its base_model_name_or_path.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { ADAPTER_CONFIG, readAdapterConfig } from '../nn/lora/peft.js';
import { readJsonObjectFile } from '../util/json_file.js';

export class ModelSourceError extends Error {
  constructor(readonly source: string, message: string) {
    super(`${source}: ${message}`);
    this.name = 'ModelSourceError';
  }
}

/** Refused: a run's folder that holds no weights yet (serve --follow waits for them). */
export class NoWeightsYetError extends ModelSourceError {}

/** A source resolved: where the weights are and, for a run, the tokenizer it trained with. */
export interface ResolvedSource {
  /** A Hugging Face folder, or a model / checkpoint file. */
  kind: 'folder' | 'file';
  path: string;
  /** Present when the source was a run's folder. */
  run?: RunRecord;
  /** Present when the source is LoRA adapters (a LoRA run, an adapter folder): `path` is then their base. */
  adapter?: AdapterSource;
}

/** LoRA adapters on a base: a PEFT folder, or a LoRA run's checkpoint scaled by the run's alpha (absent: 2r, training's default). */
export type AdapterSource = { kind: 'peft'; dir: string } | { kind: 'checkpoint'; file: string; alpha?: number };

/** Where an adapter source's weights are. */
export function adapterPath(a: AdapterSource): string {
  return a.kind === 'peft' ? a.dir : a.file;
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
  if (existsSync(join(source, ADAPTER_CONFIG))) return onBase(adapterBase(source), { kind: 'peft', dir: source });
  throw new ModelSourceError(source, 'is a folder without a config.json: neither a Hugging Face model folder, a PEFT adapter folder nor a run\'s folder');
}

/**
 * An adapter folder's base: base_model_name_or_path, a local folder or file (relative to the adapter
 * folder, else to where we run, as PEFT reads it). A hub id is refused: we read local files only.
 */
function adapterBase(dir: string): string {
  const file = join(dir, ADAPTER_CONFIG);
  const base = readJsonObject(file)?.base_model_name_or_path;
  const explicitly = `pass --model BASE --adapter ${dir}`;
  if (typeof base !== 'string' || base === '') throw new ModelSourceError(file, `base_model_name_or_path names no base model; ${explicitly}`);
  const tries = isAbsolute(base) ? [base] : [join(dir, base), base];
  const found = tries.find((p) => existsSync(p));
  if (found === undefined) throw new ModelSourceError(file, `base_model_name_or_path "${base}" is no local model (looked at ${tries.join(', ')}); a hub id must be downloaded first: ${explicitly}`);
  return found;
}

/** `adapter` on the model `base` names (itself no adapter: one adapter on a base). */
function onBase(base: string, adapter: AdapterSource, run?: RunRecord): ResolvedSource {
  const resolved = resolveModelSource(base);
  if (resolved.adapter) throw new ModelSourceError(adapterPath(adapter), `its base ${base} is itself LoRA adapters; merge them first (train --adapter DIR --merge-lora --save MERGED)`);
  return { kind: resolved.kind, path: resolved.path, adapter, ...(run ? { run } : {}) };
}

/** A run's newest weights: its checkpoints and saved model (events.jsonl, then the checkpoints folder). */
function runWeights(dir: string, config: Record<string, unknown>): ResolvedSource {
  const candidates = [...recordedWeights(dir), ...checkpointFiles(join(dir, 'checkpoints'))];
  if (candidates.length === 0) {
    throw new NoWeightsYetError(dir, 'is a run\'s folder without a checkpoint or a saved model yet (train with --checkpoint-every N or --save FILE)');
  }
  // The most steps; at a tie the saved model (written after the run's last step, gathered whole).
  candidates.sort((a, b) => b.step - a.step || Number(b.saved) - Number(a.saved));
  const best = candidates[0];
  const run: RunRecord = { dir, step: best.step, tokenizer: runTokenizer(dir, config) };
  if (best.folder && existsSync(join(best.path, ADAPTER_CONFIG))) return onBase(runBase(dir, config), { kind: 'peft', dir: best.path }, run);
  // A LoRA run's checkpoints hold its arena: the adapters (a saved model is an adapter folder, or merged).
  if (!best.saved && trainsLora(config)) return onBase(runBase(dir, config), { kind: 'checkpoint', file: best.path, alpha: loraAlpha(dir, config) }, run);
  return { kind: best.folder ? 'folder' : 'file', path: best.path, run };
}

function trainsLora(config: Record<string, unknown>): boolean {
  return config.lora_rank !== undefined || config.adapter !== undefined;
}

/** A LoRA run's base: its --init. */
function runBase(dir: string, config: Record<string, unknown>): string {
  if (typeof config.init !== 'string') throw new ModelSourceError(dir, 'is a LoRA run without --init: its base model is nowhere on disk to put the adapters on');
  return runPath(dir, config.init);
}

/** The run's --lora-alpha, else its --adapter folder's, else undefined (2r). */
function loraAlpha(dir: string, config: Record<string, unknown>): number | undefined {
  if (typeof config.lora_alpha === 'number') return config.lora_alpha;
  return typeof config.adapter === 'string' ? readAdapterConfig(runPath(dir, config.adapter)).alpha : undefined;
}

/** A path a run's config names, as given where it ran (usually the experiments folder's parent). */
function runPath(dir: string, p: string): string {
  return isAbsolute(p) || existsSync(p) ? p : resolve(dir, '..', '..', p);
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
  const where = (p: string): string => runPath(dir, p);
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
