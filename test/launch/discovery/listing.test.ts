import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { advertiseStore, checkDiscoveryFlags, clusterNameOf } from '../../../src/launch/discovery/advertise.js';
import { discoverFile, formatClusters } from '../../../src/launch/discovery/listing.js';
import type { FoundCluster } from '../../../src/launch/discovery/record.js';

const c = (name: string, host: string, port: number): FoundCluster => ({
  instance: `${name} on h (1)`, host, port, clusterName: name, protocolVersion: 1, worldSize: 3, model: 'mlp', strategy: 'ps',
});
const result = { found: [c('beta', '10.0.0.3', 7000), c('alpha', '10.0.0.1', 29500)], unreadable: [{ instance: 'old on x (9)', from: '10.0.0.7:1', problem: 'TXT layout 2, this smolcluster reads 1' }], waitedMs: 3012 };

describe('smolcluster discover\'s output', () => {
  it('--json: schema, schema_version, snake_case keys, clusters sorted by name', () => {
    assert.deepEqual(discoverFile(result), {
      schema: 'smolcluster-discover', schema_version: 1, service: '_smolcluster._tcp', listened_s: 3,
      clusters: [
        { cluster_name: 'alpha', host: '10.0.0.1', port: 29500, world_size: 3, model: 'mlp', strategy: 'ps', protocol_version: 1, instance: 'alpha on h (1)' },
        { cluster_name: 'beta', host: '10.0.0.3', port: 7000, world_size: 3, model: 'mlp', strategy: 'ps', protocol_version: 1, instance: 'beta on h (1)' },
      ],
      unreadable: [{ instance: 'old on x (9)', from: '10.0.0.7:1', problem: 'TXT layout 2, this smolcluster reads 1' }],
    });
  });

  it('text: a table, how to join, and the adverts it could not read; none found says so', () => {
    const text = formatClusters(result);
    assert.match(text, /^2 clusters on the local network \(_smolcluster\._tcp, listened 3\.0 s\):\n {2}NAME +ADDRESS +PROCESSES +MODEL +STRATEGY +PROTOCOL\n {2}alpha +10\.0\.0\.1:29500 +3 +mlp +ps +1\n {2}beta +10\.0\.0\.3:7000/);
    assert.match(text, /join one with: smolcluster worker --discover --cluster-name NAME/);
    assert.match(text, /unreadable advert "old on x \(9\)" from 10\.0\.0\.7:1: TXT layout 2/);
    assert.match(formatClusters({ found: [], unreadable: [], waitedMs: 1000 }), /^no cluster answered _smolcluster\._tcp on the local network in 1\.0 s/);
  });
});

describe('the master\'s advertisement', () => {
  it('the cluster name is --cluster-name, else the host\'s short name made valid', () => {
    assert.equal(clusterNameOf({ clusterName: 'lab' }), 'lab');
    assert.equal(clusterNameOf({}, 'mini1.local'), 'mini1');
    assert.equal(clusterNameOf({}, 'my host!'), 'my-host-');
    assert.equal(clusterNameOf({}, '...'), 'smolcluster');
    assert.throws(() => clusterNameOf({ clusterName: 'a b' }), /--cluster-name/);
  });

  it('is off unless asked, and a store on loopback is refused (no multicast is sent either way)', async () => {
    const s = { listenHost: '127.0.0.1', port: 29500, listenHint: '--bind-host 0.0.0.0, or this host\'s address', worldSize: 2, model: 'mlp', strategy: 'ps' };
    const said: string[] = [];
    assert.equal(await advertiseStore({ ...s, flags: {} }, (l) => said.push(l)), null);
    await assert.rejects(advertiseStore({ ...s, flags: { advertise: true } }, (l) => said.push(l)),
      /--advertise.*listens on 127\.0\.0\.1:29500, which other machines cannot reach; listen on the LAN \(--bind-host 0\.0\.0\.0/);
    assert.deepEqual(said, []);
  });

  it('--cluster-name without --advertise or --discover, and --discover-timeout without --discover, are refused, naming the flag', () => {
    assert.doesNotThrow(() => checkDiscoveryFlags({}));
    assert.doesNotThrow(() => checkDiscoveryFlags({ advertise: true, clusterName: 'a' }));
    assert.doesNotThrow(() => checkDiscoveryFlags({ discover: true, clusterName: 'a', discoverTimeout: 3 }));
    assert.throws(() => checkDiscoveryFlags({ clusterName: 'a' }), /\(--cluster-name\): names the cluster on the LAN: give it with --advertise .* or --discover/);
    assert.throws(() => checkDiscoveryFlags({ discoverTimeout: 3 }), /\(--discover-timeout\).*pass --discover too/);
  });
});
