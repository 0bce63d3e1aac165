import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StoreTimeoutError } from '../../../src/comm/store/protocol.js';
import { RUN_NAME_KEY, SHARED_RUN_NAME_KEY, agreeRunName, sharedRunName } from '../../../src/train/run/run_name.js';
import { TimeoutError } from '../../../src/util/errors.js';

/** A rendezvous store of one map; get() of a missing key times out as the real one does. */
function fakeStore(): { values: Map<string, string>; set(k: string, v: string): Promise<void>; get(k: string, t?: number): Promise<Uint8Array> } {
  const values = new Map<string, string>();
  return {
    values,
    set: async (k, v) => void values.set(k, v),
    get: async (k, t = 0) => {
      const v = values.get(k);
      if (v === undefined) throw new StoreTimeoutError('get', t, [k]);
      return new TextEncoder().encode(v);
    },
  };
}

describe('agreeRunName', () => {
  it('rank 0 draws the name and publishes it; a rank without --name reads it', async () => {
    const store = fakeStore();
    const zero = await agreeRunName({ rank: 0, drawn: () => 'mlp-x-abc123', store, timeoutMs: 100 });
    const one = await agreeRunName({ rank: 1, drawn: () => 'mlp-x-ffffff', store, timeoutMs: 100 });
    assert.equal(zero, 'mlp-x-abc123');
    assert.equal(one, zero);
    assert.equal(store.values.get(RUN_NAME_KEY), zero);
  });

  it('rank 0 publishes its --name; a rank given --name keeps its own', async () => {
    const store = fakeStore();
    assert.equal(await agreeRunName({ rank: 0, name: 'given', drawn: () => 'drawn', store, timeoutMs: 100 }), 'given');
    assert.equal(await agreeRunName({ rank: 1, drawn: () => 'drawn', store, timeoutMs: 100 }), 'given');
    assert.equal(await agreeRunName({ rank: 2, name: 'mine', drawn: () => 'drawn', store, timeoutMs: 100 }), 'mine');
  });

  it('a rank 0 that never publishes is named in the timeout', async () => {
    await assert.rejects(agreeRunName({ rank: 1, drawn: () => 'drawn', store: fakeStore(), timeoutMs: 100 }), (e: Error) => {
      assert.ok(e instanceof TimeoutError);
      assert.match(e.message, /run name/);
      assert.match(e.message, /rank 0/);
      assert.match(e.message, /--name/);
      return true;
    });
  });
});

describe('sharedRunName (elastic: no fixed rank 0)', () => {
  /** compareSet as the store does it: set when absent, answer the value after. */
  function casStore(): { values: Map<string, string>; compareSet(k: string, e: null, d: string): Promise<Uint8Array> } {
    const values = new Map<string, string>();
    return {
      values,
      compareSet: async (k, _e, d) => {
        if (!values.has(k)) values.set(k, d);
        return new TextEncoder().encode(values.get(k)!);
      },
    };
  }

  it('the first member\'s name is every member\'s, a late joiner\'s too; one given --name keeps it', async () => {
    const store = casStore();
    const first = await sharedRunName({ drawn: () => 'mlp-a', store });
    const second = await sharedRunName({ drawn: () => 'mlp-b', store });
    const late = await sharedRunName({ drawn: () => 'mlp-c', store });
    assert.deepEqual([first, second, late], ['mlp-a', 'mlp-a', 'mlp-a']);
    assert.equal(store.values.get(SHARED_RUN_NAME_KEY), 'mlp-a');
    assert.equal(await sharedRunName({ name: 'mine', drawn: () => 'mlp-d', store }), 'mine');
  });
});
