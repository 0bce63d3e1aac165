/** `launch` binds the server to loopback when every host is this machine (issue 33 §7), to every interface otherwise. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LaunchPlan } from '../../src/launch/hosts.js';
import { bindHostFor } from '../../src/launch/launcher.js';

const plan = (hosts: Array<{ ssh: string; address?: string }>): LaunchPlan => ({ spec: { hosts } } as unknown as LaunchPlan);

test('the server binds 127.0.0.1 when every host is loopback, 0.0.0.0 when one is another machine', () => {
  assert.equal(bindHostFor(plan([{ ssh: 'root@127.0.0.1', address: '127.0.0.1' }, { ssh: 'me@localhost' }])), '127.0.0.1');
  assert.equal(bindHostFor(plan([{ ssh: 'root@127.0.0.1' }, { ssh: 'me@mini2.local' }])), '0.0.0.0');
  assert.equal(bindHostFor(plan([{ ssh: 'me@127.0.0.1', address: '10.0.0.2' }])), '0.0.0.0');
});
