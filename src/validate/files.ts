/**
 * Reading the JSON files the validation commands take, with errors that name the file: a missing,
 * unreadable or malformed input is `InputError` (the commands exit 2 on it), never a crash.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../util/atomic_file.js';
import { SmolError } from '../util/errors.js';

/** An input file that cannot be used: missing, unreadable, not JSON, or not the expected schema. */
export class InputError extends SmolError {
  constructor(readonly file: string, message: string) {
    super('INPUT', `${file}: ${message}`);
  }
}

export function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(file, code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? String(e)})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(file, `is not valid JSON (${(e as Error).message})`);
  }
}

/** Reads a JSON object and checks its `schema` and `schema_version`. */
export function readSchema(file: string, schema: string, version: number): Record<string, unknown> {
  const v = readJson(file);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InputError(file, 'is not a JSON object');
  const o = v as Record<string, unknown>;
  if (o.schema !== schema) throw new InputError(file, `is not a ${schema} file (schema: ${JSON.stringify(o.schema ?? null)})`);
  if (o.schema_version !== version) {
    throw new InputError(file, `has ${schema} version ${JSON.stringify(o.schema_version ?? null)}; this smolcluster reads version ${version}`);
  }
  return o;
}

/** The number at `obj[key]`, or an InputError naming the file and field. */
export function numberField(file: string, obj: Record<string, unknown>, key: string, where = ''): number {
  const v = obj[key];
  if (typeof v !== 'number') throw new InputError(file, `${where}${key} must be a number, got ${JSON.stringify(v ?? null)}`);
  return v;
}

/** Writes a report atomically, creating missing parent folders (`--output reports/x.json`). */
export function writeJson(file: string, value: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}
