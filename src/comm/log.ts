/**
 * The comm layer's only output channel: one line per event, to stderr by default. Higher layers may
 * redirect it (e.g. into events.jsonl) with setCommLogger; tests silence it.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type CommLogger = (level: LogLevel, message: string) => void;

const stderrLogger: CommLogger = (level, message) => {
  if (level === 'debug' && !process.env.SMOLCLUSTER_DEBUG) return;
  process.stderr.write(`[comm ${level}] ${message}\n`);
};

let current: CommLogger = stderrLogger;

export function setCommLogger(logger: CommLogger | null): void {
  current = logger ?? stderrLogger;
}

export function commLog(level: LogLevel, message: string): void {
  current(level, message);
}
