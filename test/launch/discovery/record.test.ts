import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../src/util/errors.js';
import { type ClusterAdvert, type RawService, advertTxt, checkClusterName, instanceName, isFound, readAdvert } from '../../../src/launch/discovery/record.js';

const advert: ClusterAdvert = { clusterName: 'alpha', protocolVersion: 1, worldSize: 3, model: 'mlp', strategy: 'allreduce' };

/** A service as bonjour-service's browser hands it over, with the TXT pairs of `txt`. */
const raw = (txt: Record<string, unknown>, over: Partial<RawService> = {}): RawService => ({ name: 'alpha on h (42)', port: 29500, txt, addresses: ['10.0.0.9', '192.168.1.9'], referer: '10.0.0.9', ...over });

describe('the DNS-SD record of a cluster', () => {
  it('says the cluster name, protocol, world size, model and strategy under short keys, with its layout version', () => {
    assert.deepEqual(advertTxt(advert), { txtvers: '1', cluster: 'alpha', proto: '1', world: '3', model: 'mlp', strategy: 'allreduce' });
    assert.equal(advertTxt({ ...advert, address: '10.0.0.1' }).addr, '10.0.0.1');
  });

  it('has no key for a token: the advert is built from what the type allows, and stray fields are not copied', () => {
    const withSecret = { ...advert, token: 'cluster-secret-0123456789' } as ClusterAdvert;
    const txt = advertTxt(withSecret);
    assert.deepEqual(Object.keys(txt).sort(), ['cluster', 'model', 'proto', 'strategy', 'txtvers', 'world']);
    assert.ok(!JSON.stringify(txt).includes('secret'));
  });

  it('reads back what it wrote; the store\'s own address wins over the answer\'s source, which wins over the A records', () => {
    const found = readAdvert(raw(advertTxt(advert)));
    assert.ok(isFound(found));
    assert.deepEqual({ ...found }, { ...advert, instance: 'alpha on h (42)', host: '10.0.0.9', port: 29500 });
    const bound = readAdvert(raw(advertTxt({ ...advert, address: '10.0.0.1' })));
    assert.ok(isFound(bound) && bound.host === '10.0.0.1');
    const noReferer = readAdvert(raw(advertTxt(advert), { referer: undefined }));
    assert.ok(isFound(noReferer) && noReferer.host === '10.0.0.9');
    // Buffers (a browser in binary mode) read the same as strings.
    const binary = Object.fromEntries(Object.entries(advertTxt(advert)).map(([k, v]) => [k, Buffer.from(v)]));
    assert.deepEqual(readAdvert(raw(binary)), found);
  });

  it('a record it cannot read says why, naming the instance and where it came from; nothing from the network reaches a terminal unchecked', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{}, /TXT layout \(none\), this smolcluster reads 1/],
      [{ ...advertTxt(advert), txtvers: '2' }, /TXT layout 2/],
      [{ ...advertTxt(advert), cluster: 'bad name!' }, /no valid cluster name/],
      [{ ...advertTxt(advert), proto: 'x' }, /cluster alpha: no protocol version \(proto=x\)/],
      [{ ...advertTxt(advert), world: '0' }, /cluster alpha: no world size \(world=0\)/],
    ];
    for (const [txt, why] of cases) {
      const r = readAdvert(raw(txt));
      assert.ok(!isFound(r), `read ${JSON.stringify(txt)}`);
      assert.match(r.problem, why);
      assert.equal(r.instance, 'alpha on h (42)');
      assert.equal(r.from, '10.0.0.9:29500');
    }
    const hostile: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...advertTxt(advert), addr: 'evil.example' }, /addr=evil\.example is not an IPv4 address/],
      [{ ...advertTxt(advert), model: '\u001b[2Jmlp' }, /model=\?\[2Jmlp is not a name/],
      [{ ...advertTxt(advert), strategy: 'a b' }, /strategy=a b is not a name/],
    ];
    for (const [txt, why] of hostile) {
      const r = readAdvert(raw(txt));
      assert.ok(!isFound(r) && why.test(r.problem), JSON.stringify(r));
    }
    const escaped = readAdvert(raw({}, { name: 'x\u001b]0;pwned\u0007' }));
    assert.equal(escaped.instance, 'x?]0;pwned?');
    const noAddress = readAdvert(raw(advertTxt(advert), { referer: undefined, addresses: [] }));
    assert.ok(!isFound(noAddress) && /no address/.test(noAddress.problem));
  });

  it('cluster names: letters, digits, dot, dash, underscore, up to 63; anything else names the flag', () => {
    for (const ok of ['a', 'mini1', 'lab-cluster_2.x', 'x'.repeat(63)]) assert.equal(checkClusterName(ok), ok);
    for (const bad of ['', '-a', 'a b', 'a=b', 'x'.repeat(64), 'é']) {
      assert.throws(() => checkClusterName(bad), (e: unknown) => e instanceof ConfigError && /--cluster-name/.test(e.message) && e.message.includes(`"${bad}"`));
    }
    assert.throws(() => advertTxt({ ...advert, clusterName: 'a b' }), /--cluster-name/);
  });

  it('the instance name is the cluster\'s, the short host name and the process id', () => {
    assert.equal(instanceName('alpha', 'mini1.local', 4242), 'alpha on mini1 (4242)');
  });
});
