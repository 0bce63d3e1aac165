/**
 * ZeRO-3's frozen shards on their own (3 in-process ranks): tensors of odd sizes (a bf16 one padded
 * to a whole word) cut over the ranks, each rank keeping about a third; a gather of any range
 * brings every rank the exact values (float32) or their bf16 rounding (the cast holdBaseInBf16
 * uses); released tensors refuse use; gatherTo puts the whole layout on the root for --save.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { Linear } from '../../../src/nn/layers/linear.js';
import { Sequential } from '../../../src/nn/layers/sequential.js';
import type { Module } from '../../../src/nn/module.js';
import { FrozenShards, type FrozenDType } from '../../../src/parallel/zero/frozen_shards.js';
import { ownValues } from '../../../src/parallel/zero/sharded_model.js';
import { kernelsFor } from '../../../src/tensor/dispatch.js';
import { CPU, deviceMemory } from '../../../src/tensor/storage.js';
import { Rng } from '../../../src/util/rng.js';

/** Three frozen linears with odd sizes (15 + 5, 5 + 1, 7 + 7 values); the middle one's bias trains. */
function model(): Module {
  const m = new Sequential(new Linear(3, 5, new Rng(1)), new Linear(5, 1, new Rng(2)), new Linear(1, 7, new Rng(3)));
  m.freeze((name) => name !== '1.bias');
  return m;
}

/** What a rank should see of each frozen tensor: its values, rounded to bf16 by the cpu's cast for a bf16 layout. */
async function expected(dtype: FrozenDType): Promise<Map<string, ArrayLike<number>>> {
  const frozen = model().namedParameters().filter(([, p]) => !p.requiresGrad);
  return new Map(await Promise.all(frozen.map(async ([name, p]): Promise<[string, ArrayLike<number>]> => {
    const values = Float32Array.from(p.values() as Float32Array);
    if (dtype === 'float32') return [name, values];
    const f32 = deviceMemory(CPU).fromHost(values);
    const bf16 = deviceMemory(CPU).alloc('bfloat16', values.length);
    kernelsFor(f32).toBf16(f32.buffer, bf16.buffer);
    return [name, await bf16.read()];
  })));
}

describe('ZeRO-3 frozen shards', () => {
  for (const dtype of ['float32', 'bfloat16'] as const) {
    it(`${dtype}: a third each, every gathered range the values one process holds, the whole layout on the root`, async () => {
      const want = await expected(dtype);
      const groups = createInProcessTransports(3, { timeoutMs: 10_000 }).map((t) => new ProcessGroup(t, { timeoutMs: 10_000 }));
      const ranks = await Promise.all(groups.map(async (g) => {
        const m = model();
        return { m, shards: await FrozenShards.build(m, g, CPU, ownValues, dtype, () => true) };
      }));
      const layout = ranks[0].shards.layout;
      assert.deepEqual(layout.map((e) => e.name), [...want.keys()], 'every frozen tensor in model order, the trained bias left out');
      const perWord = dtype === 'bfloat16' ? 2 : 1;
      // 15, 5, 5, 7, 7 values: float32 back to back (39), bf16 each padded to even (16 + 6 + 6 + 8 + 8 = 44, 22 words).
      assert.equal(ranks[0].shards.plan.total, dtype === 'bfloat16' ? 22 : 39);
      assert.deepEqual(ranks.map((r) => r.shards.shardBytes), ranks[0].shards.plan.counts.map((c) => 4 * c), 'each rank keeps its words only');
      for (const { m } of ranks) for (const [name, p] of m.namedParameters()) if (!p.requiresGrad) assert.throws(() => p.values(), /is used while it is sharded/, name);
      for (const [first, last] of [[0, layout.length - 1], [1, 2], [3, 3]]) {
        await Promise.all(ranks.map((r) => r.shards.gather(first, last)));
        for (const { m } of ranks) {
          const params = new Map(m.namedParameters());
          for (let i = first; i <= last; i++) {
            const p = params.get(layout[i].name)!;
            assert.equal(p.dtype, dtype);
            assert.deepEqual(Array.from(p.values()), Array.from(want.get(layout[i].name)!), `${layout[i].name} gathered`);
          }
        }
        for (const r of ranks) r.shards.release(first, last);
      }
      assert.equal(layout.every((e) => e.offset % perWord === 0), true, 'every tensor starts on a word');
      await Promise.all(ranks.map((r) => r.shards.gatherTo(0)));
      for (const [name, p] of ranks[0].m.namedParameters()) if (!p.requiresGrad) assert.deepEqual(Array.from(p.values()), Array.from(want.get(name)!), `${name} whole on the root`);
      assert.throws(() => ranks[1].m.namedParameters()[0][1].values(), /is used while it is sharded/);
      ranks[0].shards.reshard();
      assert.throws(() => ranks[0].m.namedParameters()[0][1].values(), /is used while it is sharded/);
    });
  }
});
