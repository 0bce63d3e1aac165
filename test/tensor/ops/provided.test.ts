/** The asserted list of kernels a backend does not provide (helpers/provided.ts) is exact, on every listed backend. */
import assert from 'node:assert/strict';
import { it } from '../../helpers/every_backend.js';
import { backend } from '../../../src/tensor/dispatch.js';
import { NOT_PROVIDED, OP_PROBES, contractKernels, listedAsNotProvided, missingKernels, provides, providesOp } from '../../helpers/provided.js';

it('the kernels not provided are exactly the listed ones', () => {
  const b = backend();
  const kernels = contractKernels();
  assert.ok(kernels.length > 50, `the contract has ${kernels.length} kernels`);
  const missing = kernels.filter((k) => !provides(b, k));
  const listed = kernels.filter((k) => listedAsNotProvided(b.name, k));
  assert.deepEqual(missing, listed, `${b.name}: kernels missing ${missing.join(', ') || 'none'}; listed as not provided ${listed.join(', ') || 'none'}`);
  for (const [name, what] of NOT_PROVIDED) {
    assert.ok(kernels.includes(what) || what in OP_PROBES, `NOT_PROVIDED names ${what} (${name}), which is no kernel of the contract nor a probed op`);
  }
});

it('the ops not provided are exactly the listed ones', async () => {
  const b = backend();
  for (const op of Object.keys(OP_PROBES)) {
    const provided = await providesOp(b, op);
    assert.equal(provided, !listedAsNotProvided(b.name, op), `${b.name} ${provided ? 'provides' : 'does not provide'} ${op}; NOT_PROVIDED says otherwise`);
  }
});

it('missingKernels refuses a missing kernel that is not listed', () => {
  const b = backend();
  const stubbed = Object.assign(Object.create(b), { gemm: (): never => { throw new Error('not here'); } });
  assert.throws(() => missingKernels(stubbed, ['gemm']), new RegExp(`${b.name} does not provide gemm, which NOT_PROVIDED`));
  assert.deepEqual(missingKernels(b, ['gemm', 'conv2d']), []);
});
