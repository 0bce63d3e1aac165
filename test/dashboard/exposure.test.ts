import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exposureWarning, wildcardUrls } from '../../src/dashboard/exposure.js';

test('a dashboard beyond loopback is announced with what it exposes and the tunnel to use instead', () => {
  for (const h of ['127.0.0.1', 'localhost', '::1', '127.0.0.2']) assert.equal(exposureWarning(h, 3000), null, h);
  const all = exposureWarning('0.0.0.0', 3000)!;
  assert.match(all, /every interface of this machine \(port 3000\) without any login/);
  assert.match(all, /ssh -L 3000:127\.0\.0\.1:3000/);
  assert.match(exposureWarning('10.1.2.3', 8080)!, /listens on 10\.1\.2\.3 \(port 8080\)/);
});

test('a dashboard on every interface names the addresses other machines use', () => {
  const ifaces = {
    lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }],
    eth0: [{ address: '10.0.0.5', family: 'IPv4', internal: false }, { address: 'fe80::1', family: 'IPv6', internal: false }],
  } as unknown as ReturnType<typeof import('node:os').networkInterfaces>;
  assert.deepEqual(wildcardUrls('0.0.0.0', 3000, ifaces), ['http://10.0.0.5:3000/']);
  assert.deepEqual(wildcardUrls('::', 3000, ifaces), ['http://10.0.0.5:3000/', 'http://[fe80::1]:3000/']);
  assert.deepEqual(wildcardUrls('127.0.0.1', 3000, ifaces), []);
});
