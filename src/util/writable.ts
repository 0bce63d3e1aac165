import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from './errors.js';

/**
 * Checks, before a run spends any time, that `file` can be written where it will be written at the
 * end: its parent folders are created, and a folder (or an unwritable parent) is refused naming the
 * flag — so a bad `--output` or `--save` fails at once instead of losing the trained model.
 */
export function ensureWritable(file: string, flag: string): void {
  const parent = dirname(resolve(file));
  const refuse = (why: string): ConfigError => new ConfigError('command line', flag, `cannot write "${file}": ${why}`);
  try {
    mkdirSync(parent, { recursive: true });
  } catch (e) {
    throw refuse(`cannot create its folder ${parent} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  try {
    accessSync(parent, constants.W_OK);
  } catch {
    throw refuse(`its folder ${parent} is not writable`);
  }
  let isDir = false;
  try {
    isDir = statSync(file).isDirectory();
  } catch {
    return; // absent: will be created
  }
  if (isDir) throw refuse('it is a folder');
  try {
    accessSync(file, constants.W_OK);
  } catch {
    throw refuse('the file exists and is not writable');
  }
}

/**
 * Checks, before a run spends any time, that files can be written into `dir` (created with its
 * parents): a path through a file, a file in its place or a read-only folder is refused naming
 * the flag, instead of failing at the first save.
 */
export function ensureWritableFolder(dir: string, flag: string): void {
  const refuse = (why: string): ConfigError => new ConfigError('command line', flag, `cannot write into "${dir}": ${why}`);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw refuse(code === 'EEXIST' || code === 'ENOTDIR' ? 'it, or a folder on its path, is a file' : `cannot create it (${code ?? String(e)})`);
  }
  if (!statSync(dir).isDirectory()) throw refuse('it is a file');
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw refuse('it is not writable');
  }
}
