/**
 * Shell snippets for named tmux sessions on a host: start a command detached with its output in a
 * log file, ask whether it runs, stop it. `socket` (tmux -L) keeps a launch's sessions apart from
 * the user's own.
 */
import { shq } from './ssh.js';

function tmux(socket?: string): string {
  return socket ? `tmux -L ${shq(socket)}` : 'tmux';
}

/** Starts `sh scriptFile` (a script on the host, which sends its own output to its log) detached. */
export function tmuxStart(session: string, scriptFile: string, socket?: string): string {
  return [
    `${tmux(socket)} kill-session -t ${shq(session)} 2>/dev/null || true`,
    `${tmux(socket)} new-session -d -s ${shq(session)} sh ${shq(scriptFile)}`,
  ].join('\n');
}

/** Prints "running" or "stopped". */
export function tmuxState(session: string, socket?: string): string {
  return `if ${tmux(socket)} has-session -t ${shq(session)} 2>/dev/null; then echo running; else echo stopped; fi`;
}

export function tmuxStop(session: string, socket?: string): string {
  return `${tmux(socket)} kill-session -t ${shq(session)} 2>/dev/null && echo stopped || echo 'not running'`;
}
