/**
 * One option, described once. From a table of these (a record whose keys are the options' value
 * names, camelCase as commander names them) the rest is derived: the commander options and their
 * --help (cli/option_table.ts), the values read from SmolCluster's YAML files (yaml.ts), the
 * worker's argument list (argv.ts) and the TypeScript type of the parsed values (OptionValues).
 * Adding an option is one entry in a table plus its use.
 */

/** Where a YAML file (nn_config.yaml or cluster_config.yaml) gives this option's value. */
export interface YamlSource<T = unknown> {
  file: 'nn' | 'cluster';
  /** Dotted key path, e.g. `dataset.data_dir`. */
  key: string;
  /** The option's value for the key's (`value`, undefined when absent) in the whole file; undefined: the file says nothing. */
  read?(value: unknown, file: Record<string, unknown>): T | undefined;
}

export interface OptionSpec<T> {
  /** The value's placeholder in --help, e.g. `<n>`; absent: a switch, true when given. */
  arg?: string;
  /** --help's text: what the option means and its default. */
  help: string;
  /** Turns the typed text into the value (refusing bad text); `previous` is the value so far (repeatable options). */
  parse?(text: string, previous: T | undefined): T;
  /** Values --help lists (and commander checks, unless `parse` does). */
  choices?: readonly string[];
  /** A repeatable option's values travel as one occurrence each. */
  repeatable?: boolean;
  /** Passed on to the worker processes a launcher starts (false: the launcher itself, or one command, acts on it). */
  forward: boolean;
  /** The YAML keys that set it (a typed flag always wins over a file). */
  yaml?: ReadonlyArray<YamlSource<T>>;
  /** A field of the same name in the training config (train/run/config.ts TrainConfig) takes its value when given. */
  config?: boolean;
}

/** An option with a default: always has a value. */
export type DefaultedSpec<T> = OptionSpec<T> & { default: T };

/** Any option (the method signatures above let an OptionSpec<number> stand for one). */
export type AnySpec = OptionSpec<unknown>;
export type OptionTable = Readonly<Record<string, AnySpec>>;

/** An option that takes a value (optional unless it has a default). */
export function valued<T>(spec: DefaultedSpec<T> & { arg: string }): DefaultedSpec<T>;
export function valued<T>(spec: OptionSpec<T> & { arg: string }): OptionSpec<T>;
export function valued<T>(spec: OptionSpec<T>): OptionSpec<T> {
  return spec;
}

/** An option that takes one of `choices` (checked by commander unless `parse` is given). */
export function choice<const C extends readonly string[]>(choices: C, spec: Omit<DefaultedSpec<C[number]>, 'choices'> & { arg: string }): DefaultedSpec<C[number]>;
export function choice<const C extends readonly string[]>(choices: C, spec: Omit<OptionSpec<C[number]>, 'choices'> & { arg: string }): OptionSpec<C[number]>;
export function choice<const C extends readonly string[]>(choices: C, spec: Omit<OptionSpec<C[number]>, 'choices'>): OptionSpec<C[number]> {
  return { ...spec, choices };
}

/** A switch: true when given, absent otherwise. */
export function toggle(spec: Omit<OptionSpec<boolean>, 'arg' | 'parse' | 'choices'>): OptionSpec<boolean> {
  return spec;
}

type ValueOf<S> = S extends OptionSpec<infer T> ? T : never;
type Defaulted<Table> = { [K in keyof Table]: Table[K] extends { default: unknown } ? K : never }[keyof Table];

/** The parsed values of a table's options: defaulted ones always present, the rest optional. */
export type OptionValues<Table extends OptionTable> =
  { -readonly [K in Defaulted<Table>]: ValueOf<Table[K]> } & { -readonly [K in Exclude<keyof Table, Defaulted<Table>>]?: ValueOf<Table[K]> };

/** `batchSize` → `--batch-size`: an option's long flag from its value name (commander's inverse). */
export function longFlag(name: string): string {
  return `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}
