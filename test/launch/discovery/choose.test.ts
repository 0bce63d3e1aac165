import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../src/util/errors.js';
import { chooseCluster, matchingClusters, notFoundError } from '../../../src/launch/discovery/choose.js';
import { checkAgainstAdvert, discoverConflict } from '../../../src/launch/discovery/join.js';
import type { FoundCluster } from '../../../src/launch/discovery/record.js';

const cluster = (name: string, host: string, over: Partial<FoundCluster> = {}): FoundCluster => ({
  instance: `${name} on ${host} (1)`, host, port: 29500, clusterName: name, protocolVersion: 1, worldSize: 3, model: 'mlp', strategy: 'allreduce', ...over,
});
const a1 = cluster('alpha', '10.0.0.1');
const a2 = cluster('alpha', '10.0.0.2');
const b = cluster('beta', '10.0.0.3');

describe('which discovered cluster a worker joins', () => {
  it('filters by name, once per DNS-SD instance', () => {
    assert.deepEqual(matchingClusters([a1, b, a1], 'alpha'), [a1]);
    assert.deepEqual(matchingClusters([a1, b]), [a1, b]);
    assert.deepEqual(matchingClusters([b], 'alpha'), []);
  });

  it('joins the one of its name, or the only one when no name is asked; none yet is null', () => {
    assert.equal(chooseCluster([a1, b], { clusterName: 'beta', protocolVersion: 1 }), b);
    assert.equal(chooseCluster([a1], { protocolVersion: 1 }), a1);
    assert.equal(chooseCluster([b], { clusterName: 'alpha', protocolVersion: 1 }), null);
    assert.equal(chooseCluster([], { protocolVersion: 1 }), null);
  });

  it('two masters of one name: an error listing both, naming --cluster-name', () => {
    assert.throws(() => chooseCluster([a1, a2, b], { clusterName: 'alpha', protocolVersion: 1 }), (e: unknown) =>
      e instanceof ConfigError && /--cluster-name/.test(e.message) && /2 masters advertise the cluster name "alpha" \(_smolcluster\._tcp\)/.test(e.message)
      && e.message.includes('alpha at 10.0.0.1:29500') && e.message.includes('alpha at 10.0.0.2:29500') && !e.message.includes('beta'));
  });

  it('several clusters and no name asked: an error listing them, asking for --cluster-name', () => {
    assert.throws(() => chooseCluster([a1, b], { protocolVersion: 1 }), /2 clusters advertise _smolcluster\._tcp on this network:\n.*alpha at 10\.0\.0\.1.*\n.*beta at 10\.0\.0\.3.*\npass --cluster-name NAME/);
  });

  it('a master speaking another protocol is refused, naming both versions', () => {
    assert.throws(() => chooseCluster([cluster('alpha', '10.0.0.1', { protocolVersion: 2 })], { protocolVersion: 1 }), /speaks wire protocol 2, this smolcluster speaks 1/);
  });

  it('nothing found: names the service, the cluster, how long it looked and what else answered', () => {
    const e = notFoundError({ clusterName: 'gamma', waitedMs: 2000, others: [b], unreadable: 1 });
    assert.match(e.message, /--discover.*no master of cluster "gamma" answered DNS-SD \(_smolcluster\._tcp\) within 2\.0 s; found instead: beta at 10\.0\.0\.3:29500 .*; 1 advert could not be read/);
    assert.match(notFoundError({ waitedMs: 10_000, others: [], unreadable: 0 }).message, /no cluster master answered DNS-SD \(_smolcluster\._tcp\) within 10\.0 s\. Is the master started with --advertise/);
  });

  it('--discover refuses --rank and --master; the advert checks the world size and the model before dialing', () => {
    assert.match(discoverConflict({ rank: 1 }) ?? '', /--rank/);
    assert.match(discoverConflict({ master: 'h:1' }) ?? '', /--master/);
    assert.equal(discoverConflict({ worldSize: 3, clusterName: 'x' }), null);
    assert.doesNotThrow(() => checkAgainstAdvert(a1, {}, 'mlp'));
    assert.doesNotThrow(() => checkAgainstAdvert(a1, { worldSize: 3 }, 'mlp'));
    assert.throws(() => checkAgainstAdvert(a1, { worldSize: 4 }, 'mlp'), /--world-size.*4, but cluster alpha .* has 3 processes/);
    assert.throws(() => checkAgainstAdvert(a1, {}, 'cnn'), /--model.*this worker trains cnn, but cluster alpha .* trains mlp/);
  });
});
