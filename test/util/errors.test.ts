import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, isCommFailure, PeerError, ProtocolError, SmolError, TimeoutError } from '../../src/util/errors.js';

test('isCommFailure: a vanished, late or closed peer is recoverable; bad config, bad frames and plain errors are not', () => {
  assert.equal(isCommFailure(new PeerError(2, 'h:1', 'gone')), true);
  assert.equal(isCommFailure(new TimeoutError('allreduce', [1], 500)), true);
  assert.equal(isCommFailure(new SmolError('CLOSED', 'closed by peer')), true);
  assert.equal(isCommFailure(new ProtocolError('garbage')), false);
  assert.equal(isCommFailure(new ConfigError('c.yaml', 'lr', 'not a number')), false);
  assert.equal(isCommFailure(new Error('CLOSED')), false);
});

test('errors name what the user must act on: the file and field, the rank and host, the late ranks', () => {
  assert.match(new ConfigError('c.yaml', 'training.lr', 'not a number').message, /^c\.yaml \(training\.lr\): not a number$/);
  assert.match(new PeerError(2, 'h:1', 'gone').message, /rank 2.*h:1.*gone/);
  assert.match(new TimeoutError('allreduce', [1, 3], 500).message, /allreduce timed out after 500 ms waiting for ranks 1, 3/);
});
