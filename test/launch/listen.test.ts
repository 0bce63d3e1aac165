import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultListenHost, listenWarning } from '../../src/launch/listen.js';

describe('one rule for listen addresses', () => {
  it('loopback by default; every interface only when the peer served is on another machine', () => {
    assert.equal(defaultListenHost(), '127.0.0.1');
    assert.equal(defaultListenHost('127.0.0.1'), '127.0.0.1');
    assert.equal(defaultListenHost('localhost'), '127.0.0.1');
    assert.equal(defaultListenHost('10.0.0.1'), '0.0.0.0');
  });

  it('warns whenever a listener is reachable beyond this machine, naming it, the address and the way back to loopback', () => {
    assert.equal(listenWarning('coordinator', '127.0.0.1', 9000), null);
    const wildcard = listenWarning('coordinator', '0.0.0.0', 9000);
    assert.match(wildcard!, /the coordinator listens on every interface of this machine \(0\.0\.0\.0:9000\)/);
    assert.match(wildcard!, /SMOLCLUSTER_TOKEN/);
    assert.match(wildcard!, /--host 127\.0\.0\.1/);
    assert.match(listenWarning('compute node', '10.0.0.5', 9091)!, /the compute node listens on 10\.0\.0\.5:9091/);
    assert.match(listenWarning('rendezvous store', '0.0.0.0', 65432, '--bind-host')!, /--bind-host 127\.0\.0\.1 to keep it/);
  });
});
