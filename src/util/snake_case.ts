/**
 * The files users and scripts read (config.json, result.json, metrics lines, `info --json`, the
 * federated result) spell keys in snake_case; the code's objects are camelCase. These convert at the
 * file boundary, keeping the objects' own spelling everywhere else.
 */

/** `batchSize` → `batch_size`, `memoryGiB` → `memory_gib` (a unit stays one word); a snake_case key stays as it is. */
export function snakeCase(key: string): string {
  return key.replace(/([KMGT])iB\b/g, '$1ib').replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z])([A-Z][a-z])/g, '$1_$2').toLowerCase();
}

/** A copy of `value` with every object key, at every depth, in snake_case. */
export function snakeCaseKeys<T>(value: T): unknown {
  if (Array.isArray(value)) return value.map((v) => snakeCaseKeys(v));
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [snakeCase(k), snakeCaseKeys(v)]));
}
