/**
 * The inverse of parsing: the command line that gives a process the same option values. The local
 * launcher starts its workers with it, so parse(argv(values)) must equal values for every
 * forwarded option (test/config/options.test.ts checks every entry of the tables).
 */
import { type OptionTable, longFlag } from './spec.js';

/** One value as typed: lists comma-separated (--hidden 256,128), the rest as their string. */
function typed(value: unknown): string {
  return Array.isArray(value) ? value.join(',') : String(value);
}

/** The arguments giving `values` for the forwarded options of `table` (absent values and off switches give none). */
export function optionsToArgv(table: OptionTable, values: Readonly<Record<string, unknown>>): string[] {
  const argv: string[] = [];
  for (const [name, spec] of Object.entries(table)) {
    const value = values[name];
    if (!spec.forward || value === undefined || value === false) continue;
    const flag = longFlag(name);
    if (spec.arg === undefined) argv.push(flag);
    else if (spec.repeatable) for (const each of value as unknown[]) argv.push(flag, typed(each));
    else argv.push(flag, typed(value));
  }
  return argv;
}
