/**
 * The cluster token every connection proves it holds (HMAC in the handshake; never sent itself).
 * Resolution order: the configured value, then $SMOLCLUSTER_TOKEN, then — only for a local run,
 * where the launcher hands it to its children through the environment — a fresh random one.
 */
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../util/errors.js';

export const TOKEN_ENV = 'SMOLCLUSTER_TOKEN';

export function generateToken(): string {
  return randomBytes(32).toString('hex');
}

export interface TokenSource {
  /** Given by the caller (e.g. a launcher that already holds the token). */
  configured?: string;
  /** Generate one when nothing is configured (local runs). */
  generate?: boolean;
  env?: NodeJS.ProcessEnv;
}

export function resolveToken(src: TokenSource = {}): string {
  const env = src.env ?? process.env;
  const set = src.configured ?? env[TOKEN_ENV];
  const token = set ?? (src.generate ? generateToken() : '');
  if (!token) {
    throw new ConfigError('environment', TOKEN_ENV, `${set === undefined ? 'no' : 'an empty'} cluster token: set ${TOKEN_ENV} to the same secret on every node (e.g. export ${TOKEN_ENV}=$(openssl rand -hex 32))`);
  }
  if (token.length < 16) throw new ConfigError('environment', TOKEN_ENV, 'the cluster token is too short (at least 16 characters)');
  return token;
}
