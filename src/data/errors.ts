/**
 * A data file that is missing or malformed. `file` is the path as the loader saw it, so a user can
 * find the file; the message starts with that path and says what was wrong with it.
 */
export class DataError extends Error {
  override readonly name = 'DataError';

  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}
