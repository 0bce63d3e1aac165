/**
 * The device-aware collective facade (storage_collectives.ts) over two in-process ranks: on the cpu
 * the collective runs in the storage's own memory; on a device the host cannot map (far_device.ts)
 * the values are read, the collectives issued in call order whatever order the reads finish in,
 * and what was received is written back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import '../../../src/tensor/dispatch.js'; // registers the cpu device
import { type Storage, deviceMemory } from '../../../src/tensor/storage.js';
import { mappedMemory } from '../../../src/tensor/boundary/host_values.js';
import { StorageCollectives, type StorageGroup } from '../../../src/parallel/boundary/storage_collectives.js';
import { makeWorld } from '../../comm/fixture.js';
import { far } from '../../helpers/far_device.js';

const cpu = (v: number[]): Storage<Float32Array> => deviceMemory('cpu').fromHost(Float32Array.from(v));

describe('storage collectives', () => {
  it('cpu: all-reduces in the storage\'s own memory (no copy) and hands that very array to the group', async () => {
    const world = await makeWorld('inproc', 2);
    try {
      const storages = [cpu([1, 2]), cpu([10, 20])];
      const own = storages.map((s) => mappedMemory(s));
      const handed: Float32Array[] = [];
      await Promise.all(world.groups.map((g, r) => {
        const spy: StorageGroup = Object.assign(Object.create(g) as StorageGroup, {
          allReduce: (v: Float32Array) => {
            handed[r] = v;
            return g.allReduce(v);
          },
        });
        return new StorageCollectives(spy).allReduce(storages[r]);
      }));
      assert.deepEqual(handed, own);
      assert.deepEqual(own.map((v) => [...v!]), [[11, 22], [11, 22]]);
    } finally {
      await world.close();
    }
  });

  it('a far device: reads, reduces and writes back; a broadcast installs only on the receivers', async () => {
    const world = await makeWorld('inproc', 2);
    try {
      const grads = [far([1, 2]), far([3, 4])];
      const weights = [far([5, 6]), far([0, 0])];
      await Promise.all(world.groups.map(async (g, r) => {
        const c = new StorageCollectives(g);
        await Promise.all([c.allReduce(grads[r]), c.broadcast(weights[r], 0)]);
      }));
      assert.deepEqual(grads.map((s) => s.peek()), [[4, 6], [4, 6]]);
      assert.deepEqual(weights.map((s) => s.peek()), [[5, 6], [5, 6]]);
      assert.deepEqual(weights[0].writes, [], 'the root sends and writes nothing back');
    } finally {
      await world.close();
    }
  });

  it('issues collectives in call order even when a later read finishes first', async () => {
    const issued: string[] = [];
    const recorder = {
      rank: 0,
      size: 2,
      allReduce: (v: Float32Array) => {
        issued.push(`allReduce ${v.length}`);
        return Promise.resolve(v);
      },
      broadcast: <T>(v: T) => {
        issued.push('broadcast');
        return Promise.resolve(v);
      },
    } as unknown as StorageGroup;
    const c = new StorageCollectives(recorder);
    const slow = far([1, 2, 3], 30);
    const fast = far([1], 0);
    const mapped = cpu([5]);
    await Promise.all([c.allReduce(slow), c.allReduce(fast), c.broadcast(mapped, 0)]);
    assert.deepEqual(issued, ['allReduce 3', 'allReduce 1', 'broadcast']);
  });

  it('inOrder: a collective over the caller\'s own host buffers takes its turn among the storage ones', async () => {
    const issued: string[] = [];
    const recorder = {
      rank: 0,
      size: 2,
      allReduce: (v: Float32Array) => {
        issued.push(`allReduce ${v.length}`);
        return Promise.resolve(v);
      },
    } as unknown as StorageGroup;
    const c = new StorageCollectives(recorder);
    const late = new Promise<Float32Array>((resolve) => setTimeout(() => resolve(new Float32Array(4)), 20));
    const packed = new Float32Array(2);
    const done = await Promise.all([
      c.inOrder([late], ([v]) => recorder.allReduce(v)),
      c.allReduce(far([1, 2, 3], 0)),
      c.inOrder([packed], ([v]) => recorder.allReduce(v)),
    ]);
    assert.deepEqual(issued, ['allReduce 4', 'allReduce 3', 'allReduce 2']);
    assert.equal(done[2][0], packed, 'resolves to the values it was given');
    // Nothing queued and the values on the host: issued at once, as a direct call on the group.
    issued.length = 0;
    void c.inOrder([packed], ([v]) => recorder.allReduce(v));
    assert.deepEqual(issued, ['allReduce 2']);
  });

  it('send and recv move several storages as one message each, in order, between devices', async () => {
    const world = await makeWorld('inproc', 2);
    try {
      const from = [far([1, 2]), cpu([3])];
      const to = [cpu([0, 0]), far([0])];
      await Promise.all([new StorageCollectives(world.groups[0]).send(from, 1), new StorageCollectives(world.groups[1]).recv(to, 0)]);
      assert.deepEqual([[...(await to[0].read())], [...(await to[1].read())]], [[1, 2], [3]]);
    } finally {
      await world.close();
    }
  });

  it('allGather and reduceScatter take storages for input and output', async () => {
    const world = await makeWorld('inproc', 2);
    try {
      const gathered = [far([0, 0, 0, 0]), cpu([0, 0, 0, 0])];
      const scattered = [cpu([0]), far([0])];
      await Promise.all(world.groups.map(async (g, r) => {
        const c = new StorageCollectives(g);
        await c.allGather(r === 0 ? cpu([1, 2]) : far([3, 4]), gathered[r]);
        await c.reduceScatter(r === 0 ? far([1, 2]) : cpu([10, 20]), scattered[r]);
      }));
      for (const s of gathered) assert.deepEqual([...(await s.read())], [1, 2, 3, 4]);
      assert.deepEqual([[...(await scattered[0].read())], [...(await scattered[1].read())]], [[11], [22]]);
    } finally {
      await world.close();
    }
  });
});
