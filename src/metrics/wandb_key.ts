import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Whether W&B has a key to use: WANDB_API_KEY, or the one `wandb login` stored in ~/.netrc (or
 * $NETRC) for the API host (WANDB_BASE_URL's, default api.wandb.ai) — the SDK reads it there too.
 */
export function hasWandbKey(env: NodeJS.ProcessEnv, home = homedir()): boolean {
  if (env.WANDB_API_KEY) return true;
  const host = (env.WANDB_BASE_URL ?? 'https://api.wandb.ai').split('://').pop()!.split('/')[0];
  return netrcPassword(readNetrc(env.NETRC ?? join(home, '.netrc')), host) !== undefined;
}

function readNetrc(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The password of `machine host` in a .netrc text (tokens: machine, login, password, ...). */
export function netrcPassword(text: string, host: string): string | undefined {
  const tokens = text.split(/\s+/).filter(Boolean);
  let inHost = false;
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] === 'machine') inHost = tokens[++i] === host;
    else if (tokens[i] === 'default') inHost = false;
    else if (tokens[i] === 'password' && inHost) return tokens[i + 1];
  }
  return undefined;
}
