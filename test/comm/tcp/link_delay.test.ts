import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LINK_DELAY_ENV } from '../../../src/comm/tcp/transport.js';
import { makeTcpTransports } from '../fixture.js';

describe('test-only link delay knob (bench:links)', () => {
  it('delays every data message by the set time, keeping their order', async () => {
    process.env[LINK_DELAY_ENV] = '60';
    const [a, b] = await makeTcpTransports(2).finally(() => delete process.env[LINK_DELAY_ENV]);
    try {
      const t0 = performance.now();
      const got = Promise.all([1, 2, 3].map((i) => b.recv(0, 7, {}).then((m) => [m[0], performance.now() - t0] as const)));
      await Promise.all([1, 2, 3].map((i) => a.send(1, 7, Uint8Array.of(i))));
      const received = await got;
      assert.deepEqual(received.map(([v]) => v), [1, 2, 3]);
      for (const [, ms] of received) assert.ok(ms >= 55, `arrived after ${ms.toFixed(1)} ms`);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
