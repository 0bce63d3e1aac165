/**
 * The ring all-reduce as the composition of reduce_scatter.ts and allgather.ts keeps the message
 * pattern and the summation path it had as one private loop: the same sends (peer, tag, size), and
 * segment j summed x_j + x_{j+1} + ... in that order, so the same bits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { pieceRange, planRing } from '../../../src/comm/collectives/ring_plan.js';
import type { SendOptions, Transport } from '../../../src/comm/transport.js';
import { rankData } from '../fixture.js';

const TAG_HI = 2 ** 32;

/** A transport that records every send (peer, tag's message index, bytes) before passing it on. */
function recording(t: Transport, log: string[]): Transport {
  return new Proxy(t, {
    get(target, prop, receiver) {
      if (prop === 'send') {
        return (peer: number, tag: number, payload: Uint8Array, opts?: SendOptions) => {
          log.push(`${peer}:${tag % TAG_HI}:${payload.length}`);
          return target.send(peer, tag, payload, opts);
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

/** The sends the one-loop ring made: reduce-scatter step s sends segment r-s, all-gather step s segment r+1-s, per lane. */
function expectedSends(r: number, n: number, length: number, chunkFloats: number): string[] {
  const plan = planRing(length, n, chunkFloats);
  const steps = n - 1;
  const mod = (i: number): number => ((i % n) + n) % n;
  const bytes = (seg: number, lane: number): number => {
    const [a, b] = pieceRange(plan, mod(seg), lane);
    return 4 * (b - a);
  };
  const out: string[] = [];
  for (let lane = 0; lane < plan.lanes; lane++) {
    for (let s = 0; s < steps; s++) out.push(`${mod(r + 1)}:${s * plan.lanes + lane}:${bytes(r - s, lane)}`);
    for (let s = 0; s < steps; s++) out.push(`${mod(r + 1)}:${(steps + s) * plan.lanes + lane}:${bytes(r + 1 - s, lane)}`);
  }
  return out.sort();
}

test('ring all-reduce: the same sends and the same summation path (x_j + x_{j+1} + ...) as before the phases were split', async () => {
  for (const [n, length, chunkBytes] of [[3, 1000, 400], [4, 4097, 64], [2, 7, 4]] as const) {
    const logs = Array.from({ length: n }, () => [] as string[]);
    const transports = createInProcessTransports(n);
    const groups = transports.map((t, r) => new ProcessGroup(recording(t, logs[r]), { chunkBytes }));
    try {
      const inputs = Array.from({ length: n }, (_, r) => rankData(r, length, 'float'));
      const out = await Promise.all(groups.map((g, r) => g.allReduce(inputs[r].slice(), { algorithm: 'ring' })));
      for (let r = 0; r < n; r++) assert.deepEqual([...logs[r]].sort(), expectedSends(r, n, length, chunkBytes >>> 2), `world ${n}, rank ${r}: sends`);
      const plan = planRing(length, n, chunkBytes >>> 2);
      for (let j = 0; j < n; j++) {
        for (let i = plan.segStart[j]; i < plan.segStart[j + 1]; i++) {
          let acc = inputs[j][i];
          for (let k = 1; k < n; k++) acc = Math.fround(acc + inputs[(j + k) % n][i]);
          for (let r = 0; r < n; r++) assert.ok(Object.is(out[r][i], acc), `world ${n}, rank ${r}, [${i}]: ${out[r][i]} != ${acc}`);
        }
      }
    } finally {
      await Promise.all(transports.map((t) => t.close()));
    }
  }
});
