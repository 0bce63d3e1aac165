/** Commander options from the option tables (config/options/): flag, placeholder, help, choices, parser, default. */
import { type Command, Option } from 'commander';
import { type AnySpec, type OptionTable, longFlag } from '../config/options/index.js';

export function commanderOption(name: string, spec: AnySpec): Option {
  const option = new Option(spec.arg === undefined ? longFlag(name) : `${longFlag(name)} ${spec.arg}`, spec.help);
  if (spec.choices) option.choices(spec.choices);
  // After choices: a parser of our own replaces commander's check of them (with our message).
  if (spec.parse) option.argParser(spec.parse);
  if ('default' in spec) option.default(spec.default);
  return option;
}

/** Adds every option of `table` to `cmd`, in the table's order. */
export function addOptions(cmd: Command, table: OptionTable): Command {
  for (const [name, spec] of Object.entries(table)) cmd.addOption(commanderOption(name, spec));
  return cmd;
}
