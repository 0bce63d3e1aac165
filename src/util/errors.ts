/**
 * Typed errors that carry the context a user needs to act: which file and field, which rank on which
 * host, which operation waited for whom. The CLI prints `err.message` alone (one or two lines); the
 * stack is for `--verbose`. Every error has a stable `.code` so callers can branch without parsing text.
 */

export class SmolError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A configuration value is missing or invalid: names the file and the field path inside it. */
export class ConfigError extends SmolError {
  constructor(
    readonly file: string,
    readonly path: string,
    message: string,
  ) {
    super('CONFIG', `${file}${path ? ` (${path})` : ''}: ${message}`);
  }
}

/** A peer failed, refused us, or could not be reached: names its rank and host. */
export class PeerError extends SmolError {
  constructor(
    readonly rank: number,
    readonly host: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('PEER', `${describePeer(rank, host)}: ${message}`, options);
  }
}

/** A deadline expired: names the operation, the rank(s) it was waiting for, and how long it waited. */
export class TimeoutError extends SmolError {
  constructor(
    readonly op: string,
    readonly ranks: number[],
    readonly waitedMs: number,
    detail?: string,
  ) {
    const who = ranks.length === 0 ? '' : ` waiting for ${ranks.length === 1 ? 'rank' : 'ranks'} ${ranks.join(', ')}`;
    super('TIMEOUT', `${op} timed out after ${Math.round(waitedMs)} ms${who}${detail ? ` (${detail})` : ''}`);
  }
}

/** A peer spoke something other than our protocol: garbage, truncated or oversize frames, a refusal. */
export class ProtocolError extends SmolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PROTOCOL', message, options);
  }
}

function describePeer(rank: number, host: string): string {
  if (rank < 0) return host || 'peer';
  return host ? `rank ${rank} (${host})` : `rank ${rank}`;
}

/** A peer vanished, timed out or closed: what a survivor (elastic ranks, restartable workers) may recover from. */
export function isCommFailure(err: unknown): boolean {
  return err instanceof SmolError && (err.code === 'PEER' || err.code === 'TIMEOUT' || err.code === 'CLOSED');
}
