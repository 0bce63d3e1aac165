/**
 * JSONL files of records (chat examples, eval tasks, GRPO prompts): each non-blank line one JSON
 * object, named by its file and line in every error.
 */
import { readFileSync } from 'node:fs';
import { DataError } from './errors.js';

export interface JsonlRecord {
  record: Record<string, unknown>;
  /** `file: line N`, for errors about the record. */
  where: string;
}

/** The records of `file`; one that cannot be read is refused naming it, `expects` saying what was wanted there. */
export function readJsonlRecords(file: string, expects: string): JsonlRecord[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataError(file, `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})${expects ? `: ${expects}` : ''}`);
  }
  return text.split('\n').flatMap((line, i) => (line.trim() === '' ? [] : [{ record: jsonObjectLine(line, `${file}: line ${i + 1}`), where: `${file}: line ${i + 1}` }]));
}

/** One line as a JSON object, or a DataError naming `where`. */
export function jsonObjectLine(line: string, where: string): Record<string, unknown> {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch (e) {
    throw new DataError(where, `is not JSON (${(e as Error).message})`);
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) throw new DataError(where, 'is not a JSON object');
  return record as Record<string, unknown>;
}
