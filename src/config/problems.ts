import { ConfigError } from '../util/errors.js';

/**
 * Every problem found in one pass over one or more configuration files. It is the first problem's
 * ConfigError (file, path and message begin with it), its message the others on the lines after,
 * so a user fixes them all at once rather than one per run.
 */
export class ConfigProblems extends ConfigError {
  constructor(readonly problems: readonly ConfigError[]) {
    super(problems[0].file, problems[0].path, '');
    this.message = problems.map((p) => p.message).join('\n  ');
  }
}

/** Throws the problems found, as one error (the single ConfigError itself when there is one). */
export function throwProblems(problems: readonly ConfigError[]): void {
  if (problems.length === 1) throw problems[0];
  if (problems.length > 1) throw new ConfigProblems(problems);
}

/** The problems an error stands for: its list, itself if it is one ConfigError, else none (rethrown). */
export function problemsOf(err: unknown): readonly ConfigError[] {
  if (err instanceof ConfigProblems) return err.problems;
  if (err instanceof ConfigError) return [err];
  throw err;
}
