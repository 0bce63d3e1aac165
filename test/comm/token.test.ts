import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateToken, resolveToken, TOKEN_ENV } from '../../src/comm/token.js';
import { ConfigError } from '../../src/util/errors.js';

test('token: configured, then environment, then generated for local runs, else a clear error', () => {
  assert.equal(resolveToken({ configured: 'from-config-0123456789', env: { [TOKEN_ENV]: 'from-env-0123456789' } }), 'from-config-0123456789');
  assert.equal(resolveToken({ env: { [TOKEN_ENV]: 'from-env-0123456789' } }), 'from-env-0123456789');
  assert.match(resolveToken({ env: {}, generate: true }), /^[0-9a-f]{64}$/);
  assert.notEqual(generateToken(), generateToken());
  assert.throws(() => resolveToken({ env: {} }), (e: Error) => e instanceof ConfigError && /no cluster token: set SMOLCLUSTER_TOKEN/.test(e.message));
  assert.throws(() => resolveToken({ env: { [TOKEN_ENV]: 'short' } }), /too short/);
});
