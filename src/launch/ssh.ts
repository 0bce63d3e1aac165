/**
 * Running shell scripts on other hosts with the system `ssh` client. The script travels on ssh's
 * standard input to `sh -s`, so nothing in it — a cluster token in particular — ever appears on a
 * command line (ours, ssh's on this host, or the shell's on the remote host).
 */
import { spawn } from 'node:child_process';
import { SmolError } from '../util/errors.js';

export interface SshTarget {
  /** What ssh dials: host, user@host, or an ~/.ssh/config alias. */
  dest: string;
  /** Extra ssh arguments (e.g. -p 2222, -i key, -o ...). */
  options?: string[];
}

export interface SshResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export const SSH_CONNECT_TIMEOUT_S = 10;

/**
 * ssh's arguments: never prompts (BatchMode), gives up connecting after a while. The destination
 * comes after `--` and may not start with "-", so a hosts file cannot smuggle in an ssh option.
 */
export function sshArgs(t: SshTarget): string[] {
  if (t.dest === '' || t.dest.startsWith('-')) throw new SmolError('LAUNCH', `ssh destination "${t.dest}" may not be empty or start with "-"`);
  return ['-o', 'BatchMode=yes', '-o', `ConnectTimeout=${SSH_CONNECT_TIMEOUT_S}`, ...(t.options ?? []), '--', t.dest, 'sh -s'];
}

/** Runs `script` with `sh` on the target; resolves with its exit code and output (never rejects). */
export function runRemote(t: SshTarget, script: string, timeoutMs = 60_000): Promise<SshResult> {
  let args: string[];
  try {
    args = sshArgs(t);
  } catch (e) {
    return Promise.resolve({ code: 255, stdout: '', stderr: (e as Error).message });
  }
  return new Promise((resolve) => {
    const child = spawn('ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: 255, stdout, stderr: `${stderr}${err.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(script);
  });
}

/** A word for sh: single-quoted (a leading ~/ stays expandable as "$HOME"/...). */
export function shq(s: string): string {
  if (s === '~') return '"$HOME"';
  if (s.startsWith('~/')) return `"$HOME"/${shq(s.slice(2))}`;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
