/**
 * The option values SmolCluster's YAML files give, read through each option's `yaml` sources: a
 * key the file has (or, with a `read`, what the file means without it) sets the option's value.
 */
import type { OptionTable } from './spec.js';

function at(file: Record<string, unknown>, path: string): unknown {
  let node: unknown = file;
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** Option values (keyed by option name) that `file`, of kind `kind`, sets. */
export function yamlOptionValues(table: OptionTable, kind: 'nn' | 'cluster', file: Record<string, unknown>): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(table)) {
    for (const source of spec.yaml ?? []) {
      if (source.file !== kind) continue;
      const raw = at(file, source.key);
      const value = source.read ? source.read(raw, file) : raw;
      if (value !== undefined) values[name] = value;
    }
  }
  return values;
}

/** Every YAML key some option reads, as `nn:dataset.name` (docs/CONFIG.md lists them). */
export function yamlKeys(table: OptionTable): string[] {
  return Object.values(table).flatMap((spec) => (spec.yaml ?? []).map((s) => `${s.file}:${s.key}`));
}
