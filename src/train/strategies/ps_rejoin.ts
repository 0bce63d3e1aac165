/**
 * Re-admission, shared by the parameter servers (ps, async-ps) when they run with `recovery`
 * (comm/hub.ts does the sockets): the server numbers each worker's connections (a re-admitted
 * worker starts a new one and the old one's failures no longer count), gives up on a silent
 * worker's link so it sees the loss when it wakes, waits for its workers after its own restart,
 * and welcomes each (re)joining worker with the model state; a worker that lost its server — or
 * heard nothing from it past its deadline (a hung server) — re-dials it and takes that welcome.
 */
import { performance } from 'node:perf_hooks';
import type { ProcessGroup } from '../../comm/process_group.js';
import { PeerError, TimeoutError } from '../../util/errors.js';
import { type PsRecovery, SERVER_RANK, TAG } from './ps_common.js';

/** Connection generation of each worker (0: the one of the start-up mesh). */
export class Generations {
  private readonly gen = new Map<number, number>();

  of(w: number): number {
    return this.gen.get(w) ?? 0;
  }

  /** Worker w came back on a new connection: its generation. */
  next(w: number): number {
    const g = this.of(w) + 1;
    this.gen.set(w, g);
    return g;
  }
}

/** One waiter at a time (a server's main loop), woken early by poke(): a message landed, a worker came or went. */
export class Waker {
  private wake: (() => void) | null = null;

  /** Resolves after ms, or sooner when poked. */
  nap(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  poke(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

/** Server: closes worker w's link, so a stalled worker finds it closed when it wakes and re-dials. */
export function dropLink(group: ProcessGroup, w: number, err: Error): void {
  (group.transport as { disconnect?(peer: number, reason: Error): void }).disconnect?.(w, err);
}

/**
 * A restarted server: until every worker is back (`missing()` empty), or the deadline — then on
 * with those that are back (the others may still rejoin); with none back, a TimeoutError naming them.
 * `nap(ms)` resolves after ms, or sooner when a worker arrives.
 */
export async function awaitWorkers(label: string, missing: () => number[], total: number, timeoutMs: number, nap: (ms: number) => Promise<void>): Promise<void> {
  const start = performance.now();
  while (missing().length > 0) {
    const waited = performance.now() - start;
    if (waited >= timeoutMs) {
      const gone = missing();
      if (gone.length === total) throw new TimeoutError(`${label} restart`, gone, waited, 'no worker reconnected');
      process.stderr.write(`smolcluster: ${label}: continuing without worker rank ${gone.join(', ')} (not back after ${Math.round(waited)} ms; ${gone.length === 1 ? 'it' : 'they'} may still rejoin)\n`);
      return;
    }
    await nap(Math.max(1, timeoutMs - waited));
  }
}

/** Server → worker w: the welcome's header, then each part. */
export async function sendWelcome(group: ProcessGroup, w: number, head: Float64Array, parts: ArrayBufferView[]): Promise<void> {
  await group.send(head, w, { tag: TAG.welcomeHead });
  for (const p of parts) await group.send(p, w, { tag: TAG.welcomeBody });
}

/** Worker: the server's welcome, its parts received in place; returns the header. */
export async function receiveWelcome(group: ProcessGroup, head: Float64Array, parts: ArrayBufferView[], timeoutMs: number): Promise<Float64Array> {
  await group.recv(head, SERVER_RANK, { tag: TAG.welcomeHead, timeoutMs });
  for (const p of parts) await group.recv(p, SERVER_RANK, { tag: TAG.welcomeBody, timeoutMs });
  return head;
}

/**
 * Whether a worker with recovery re-dials its server after `err`: the link to the server failed,
 * or the server said nothing past the deadline (alive but not answering: hung, or stopped).
 */
export function serverLost(err: unknown, recovery: PsRecovery | undefined): err is Error {
  if (!recovery?.reconnect) return false;
  if (err instanceof PeerError) return err.rank === SERVER_RANK;
  return err instanceof TimeoutError && err.ranks.length === 1 && err.ranks[0] === SERVER_RANK;
}

/**
 * Worker: re-dials the server it lost (capped backoff; the deadline's error names the server) and
 * takes its welcome. A silent server's link is closed first, so nothing it sends later is mistaken
 * for an answer on the new link.
 */
export async function rejoinServer(label: string, group: ProcessGroup, recovery: PsRecovery, err: Error, welcome: () => Promise<void>): Promise<void> {
  const silent = !(err instanceof PeerError);
  process.stderr.write(`smolcluster: ${label} ${group.rank}: ${silent ? 'the server (rank 0) did not answer' : 'lost the server'} (${err.message}); reconnecting\n`);
  if (silent) dropLink(group, SERVER_RANK, err);
  await recovery.reconnect!();
  await welcome();
}
