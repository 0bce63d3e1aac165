/**
 * The local launcher's liveness probe of a process it restarts (a parameter server under
 * `--max-restarts`): a process can be alive and still not answer — stopped (SIGSTOP), blocked in
 * a long synchronous call, deadlocked — and then it never exits, so a supervisor that waits for
 * exits never restarts it. The launcher pings the child over its IPC channel every `everyMs`; the
 * child's event loop answers (answerLivenessProbes). When no answer came for `deadlineMs`, the
 * child is hung: `onHung` (the launcher SIGKILLs it, and restarts it like a crashed one).
 *
 * Its workers notice the same silence on their own, at their deadline, and re-dial the server's
 * door; the probe is what replaces the server they wait for. A child is not judged before its
 * first answer (start-up), and the probe stops when the child exits.
 */
import type { ChildProcess } from 'node:child_process';

const PING = 'smolcluster:ping';
const PONG = 'smolcluster:pong';

export interface LivenessProbe {
  /** Ping period (ms). */
  everyMs: number;
  /** Silence after which the child counts as hung (ms). */
  deadlineMs: number;
  /** Called once, with how long the child has been silent. */
  onHung(silentMs: number): void;
}

/** Probes `child` (spawned with an 'ipc' stdio entry) until it exits or is found hung. */
export function probeLiveness(child: ChildProcess, o: LivenessProbe): void {
  let lastAnswer = 0;
  const onMessage = (m: unknown): void => {
    if (m === PONG) lastAnswer = Date.now();
  };
  child.on('message', onMessage);
  const timer = setInterval(() => {
    if (lastAnswer > 0 && Date.now() - lastAnswer > o.deadlineMs) {
      stop();
      o.onHung(Date.now() - lastAnswer);
      return;
    }
    if (child.connected) child.send(PING, (err) => err && undefined);
  }, o.everyMs);
  timer.unref();
  const stop = (): void => {
    clearInterval(timer);
    child.off('message', onMessage);
  };
  child.once('exit', stop);
}

/** In a child the launcher probes: answer each ping from the event loop, without keeping the process alive. */
export function answerLivenessProbes(): void {
  if (!process.send || !process.channel) return;
  process.on('message', (m: unknown) => {
    if (m === PING && process.connected) process.send!(PONG, undefined, undefined, (err) => err && undefined);
  });
  // A 'message' listener holds the channel open; the process must still end when its work is done.
  process.channel.unref();
}
