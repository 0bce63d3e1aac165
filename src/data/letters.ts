/**
 * UCI Letter Recognition, split the way the original coordinator/compute-node system used it: a
 * folder of `train_letters<N>.txt` shards (one task each) and `validate_letters.txt`. Each row is 16
 * integer features (0–15) then the label 0–25 (A = 0), comma-separated, no header. Features stay raw
 * integers (as in the original), so its learning rates carry over.
 *
 * A copy ships with the package in `data/letters/` (defaultLettersDir), so tests and the bench need
 * nothing outside the repository.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataError } from './errors.js';

export const LETTER_FEATURES = 16;
export const LETTER_CLASSES = 26;
export const VALIDATION_FILE = 'validate_letters.txt';
const TRAIN_FILE = /^train_letters(\d+)\.txt$/;

/** One file of rows: features [rows, 16] and labels [rows]. */
export interface LetterShard {
  /** The file's name (without folder): what events and errors call the shard. */
  name: string;
  rows: number;
  features: Float32Array;
  labels: Int32Array;
}

export interface LettersData {
  dir: string;
  /** The training shards in numeric order (train_letters1, 2, …, 10, 11): one task each. */
  train: LetterShard[];
  validation: LetterShard;
}

/** The copy inside the package (data/letters), resolved from this file (same from src and dist). */
export function defaultLettersDir(): string {
  const fromDist = fileURLToPath(new URL('../../../data/letters', import.meta.url));
  return existsSync(fromDist) ? fromDist : fileURLToPath(new URL('../../data/letters', import.meta.url));
}

/** Parses one letters file; every malformed row is reported with the file and its line number. */
export function parseLetters(text: string, file: string, name = file): LetterShard {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop();
  const rows = lines.length;
  const features = new Float32Array(rows * LETTER_FEATURES);
  const labels = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const where = `line ${r + 1}`;
    const cells = lines[r].split(',');
    if (cells.length !== LETTER_FEATURES + 1) {
      throw new DataError(file, `${where}: expected ${LETTER_FEATURES + 1} comma-separated columns (16 features, then the label), got ${cells.length}`);
    }
    for (let c = 0; c <= LETTER_FEATURES; c++) {
      const cell = cells[c].trim();
      if (!/^-?\d+$/.test(cell)) throw new DataError(file, `${where}, column ${c + 1}: "${cell.slice(0, 20)}" is not an integer`);
      const v = Number(cell);
      if (c < LETTER_FEATURES) features[r * LETTER_FEATURES + c] = v;
      else if (v < 0 || v >= LETTER_CLASSES) throw new DataError(file, `${where}: label ${v} is out of range (0–${LETTER_CLASSES - 1})`);
      else labels[r] = v;
    }
  }
  if (rows === 0) throw new DataError(file, 'no rows');
  return { name, rows, features, labels };
}

export function readLettersFile(file: string): LetterShard {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DataError(file, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseLetters(text, file, file.split(/[\\/]/).pop());
}

/** Loads a letters folder: every train_letters<N>.txt and validate_letters.txt. */
export function loadLetters(dir: string): LettersData {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new DataError(dir, 'not a folder (expected train_letters<N>.txt files and validate_letters.txt)');
  const names = readdirSync(abs)
    .map((f) => ({ f, m: TRAIN_FILE.exec(f) }))
    .filter((e) => e.m !== null)
    .sort((a, b) => Number(a.m![1]) - Number(b.m![1]))
    .map((e) => e.f);
  if (names.length === 0) throw new DataError(dir, 'no training files (expected train_letters1.txt, train_letters2.txt, …)');
  const validationFile = join(abs, VALIDATION_FILE);
  if (!existsSync(validationFile)) throw new DataError(validationFile, 'missing: the validation set is required');
  return { dir: abs, train: names.map((f) => readLettersFile(join(abs, f))), validation: readLettersFile(validationFile) };
}
