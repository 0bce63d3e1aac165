import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CODEC_NAMES, codecByName } from '../../../src/comm/codecs/codec.js';
import { HEADER_BYTES } from '../../../src/comm/wire/frame.js';
import { BACKENDS, bitsEqual, makeWorld, onAll, rankData } from '../fixture.js';

const TOLERANCE = { fp16: 2 ** -10, bf16: 2 ** -7, int8: 2 / 127 } as const;

for (const backend of BACKENDS) {
  describe(`compressed all-reduce (${backend})`, () => {
    for (const name of CODEC_NAMES) {
      it(`${name}: 3 ranks end with the same bits, the sum within the codec's error; residual and bytes on the wire`, async () => {
        const world = await makeWorld(backend, 3, { timeoutMs: 5000 });
        try {
          const codec = codecByName(name);
          const len = 1000;
          const inputs = [0, 1, 2].map((r) => rankData(r, len, 'float'));
          const exact = Float64Array.from({ length: len }, (_, i) => inputs.reduce((s, x) => s + x[i], 0));
          const scale = Math.max(...inputs.map((x) => Math.max(...x.map(Math.abs))));
          const residuals = [0, 1, 2].map(() => new Float32Array(len));
          const before = world.groups.map((g) => g.bytesSent);
          const out = await onAll(world, (pg, r) => pg.allReduceCompressed(inputs[r].slice(), codec, { residual: residuals[r] }));
          for (const o of out) assert.ok(bitsEqual(o, out[0]));
          for (let i = 0; i < len; i++) assert.ok(Math.abs(out[0][i] - exact[i]) <= 3 * TOLERANCE[name] * scale, `${name} [${i}] ${out[0][i]} vs ${exact[i]}`);
          // The residual is what this rank's own encoding lost.
          for (const r of [0, 1, 2]) {
            const bytes = new Uint8Array(codec.encodedBytes(len));
            codec.encode(inputs[r], bytes);
            const mine = new Float32Array(len);
            codec.decode(bytes, mine);
            residuals[r].forEach((e, i) => assert.equal(e, Math.fround(inputs[r][i] - mine[i])));
          }
          const frame = codec.encodedBytes(len) + (backend === 'tcp' ? HEADER_BYTES : 0);
          world.groups.forEach((g, r) => assert.equal(g.bytesSent - before[r], 2 * frame, `rank ${r} bytes`));
        } finally {
          await world.close();
        }
      });
    }
  });
}

describe('compressed all-reduce with an exact tail', () => {
  it('sums the tail exactly in the same message (one frame per peer), the gradient as before', async () => {
    const world = await makeWorld('tcp', 2, { timeoutMs: 5000 });
    try {
      const codec = codecByName('int8');
      const len = 301; // 301 + 8 bytes of scales: not a multiple of 4, so the tail sits after 3 bytes of padding
      const inputs = [0, 1].map((r) => rankData(r, len, 'float'));
      const tails = [Float32Array.of(0.1, 3, 1e-7), Float32Array.of(0.2, 5, 1e7)];
      const before = world.groups.map((g) => g.bytesSent);
      const plain = await onAll(world, (pg, r) => pg.allReduceCompressed(inputs[r].slice(), codec));
      const mid = world.groups.map((g) => g.bytesSent);
      const withTail = await onAll(world, (pg, r) => pg.allReduceCompressed(inputs[r].slice(), codec, { exact: tails[r] }));
      for (const o of withTail) assert.ok(bitsEqual(o, plain[0]));
      for (const t of tails) assert.deepEqual([...t], [Math.fround(0.1) + Math.fround(0.2), 8, Math.fround(Math.fround(1e-7) + Math.fround(1e7))].map(Math.fround));
      world.groups.forEach((g, r) => assert.equal(g.bytesSent - mid[r], mid[r] - before[r] + 3 + 12, `rank ${r}: padding and the tail in the same frame`));
    } finally {
      await world.close();
    }
  });
});

describe('int8 error feedback', () => {
  it('keeps a component far below the quantization step: the sum over steps stays within one step of the truth', async () => {
    const world = await makeWorld('inproc', 2, { timeoutMs: 5000 });
    try {
      const codec = codecByName('int8');
      // One large value per block sets the step (1/127); the small ones are 1/20 of a step.
      const g = Float32Array.from({ length: 256 }, (_, i) => (i === 0 ? 1 : 0.0004));
      const steps = 200;
      for (const feedback of [true, false]) {
        const residual = [new Float32Array(256), new Float32Array(256)];
        const total = new Float64Array(256);
        for (let s = 0; s < steps; s++) {
          const out = await onAll(world, (pg, r) => {
            const x = g.slice();
            if (feedback) for (let i = 0; i < 256; i++) x[i] += residual[r][i];
            return pg.allReduceCompressed(x, codec, { residual: residual[r] });
          });
          out[0].forEach((v, i) => (total[i] += v));
        }
        const err = Math.abs(total[5] - 2 * steps * 0.0004);
        if (feedback) assert.ok(err <= 2 / 127, `with feedback the error stays within a step (${err})`);
        else assert.ok(err > 0.1, `without feedback the small component is lost (${err})`);
      }
    } finally {
      await world.close();
    }
  });
});
