/**
 * Ctrl-C (SIGINT) or SIGTERM during a checkpointed run: the step in flight finishes, a checkpoint of
 * it is written, and the run stops with InterruptedError — so `--resume auto` continues from the
 * step the user stopped at, not from the last periodic checkpoint. A second signal (a second
 * later: a terminal's SIGINT and a launcher's SIGTERM arrive together) exits at once.
 */
import { SmolError } from '../../util/errors.js';

export class InterruptedError extends SmolError {
  constructor(readonly signal: NodeJS.Signals, readonly step: number, readonly file: string | null) {
    super('INTERRUPTED', `interrupted (${signal}${signal === 'SIGINT' ? ', Ctrl-C' : ''}) after step ${step}${file ? `: saved ${file}; continue with --resume auto` : ''}`);
  }
}

/** Exit status of a run stopped by a signal, as a shell reports one (128 + the signal's number). */
export function interruptedExitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? 130 : 143;
}

export class StopRequest {
  requested: NodeJS.Signals | null = null;
  private requestedAt = 0;
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    // Asked again (not the launcher's SIGTERM right after the terminal's SIGINT): no more waiting.
    if (this.requested && Date.now() - this.requestedAt > 1000) process.exit(interruptedExitCode(signal));
    if (this.requested) return;
    this.requested = signal;
    this.requestedAt = Date.now();
  };

  private lastTurn = performance.now();

  /**
   * The signal asked for, if any. A step that never waits on I/O never lets Node run a signal's
   * handler, so every 50 ms this yields one turn of the event loop (microseconds) to hear it.
   */
  async poll(): Promise<NodeJS.Signals | null> {
    if (this.requested === null && performance.now() - this.lastTurn >= 50) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.lastTurn = performance.now();
    }
    return this.requested;
  }

  /** Listens for SIGINT and SIGTERM until dispose(). */
  static watch(): StopRequest {
    return new StopRequest().listen();
  }

  /** Starts listening (a request made before the run it stops begins: no signal is taken before then). */
  listen(): this {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    return this;
  }

  dispose(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}
