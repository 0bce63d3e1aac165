import { existsSync, readFileSync } from 'node:fs';

/**
 * A JSON object file, or null when the file is absent. A file that is not valid JSON, or holds
 * something other than an object, is refused with `fail(file, why)`: each caller names it with its
 * own error class (a model source, a chat template, an adapter folder).
 */
export function readJsonObjectFile(file: string, fail: (file: string, why: string) => Error): Record<string, unknown> | null {
  if (!existsSync(file)) return null;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw fail(file, `is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw fail(file, 'is not a JSON object');
  return json as Record<string, unknown>;
}
