/** The asserted list of kernels a backend does not provide (helpers/provided.ts) is exact, on every listed backend. */
import assert from 'node:assert/strict';
import { it } from '../../helpers/every_backend.js';
import { backend } from '../../../src/tensor/dispatch.js';
import { NOT_PROVIDED, contractKernels, listedAsNotProvided, missingKernels, provides } from '../../helpers/provided.js';

it('the kernels not provided are exactly the listed ones', () => {
  const b = backend();
  const kernels = contractKernels();
  assert.ok(kernels.length > 50, `the contract has ${kernels.length} kernels`);
  const missing = kernels.filter((k) => !provides(b, k));
  const listed = kernels.filter((k) => listedAsNotProvided(b.name, k));
  assert.deepEqual(missing, listed, `${b.name}: kernels missing ${missing.join(', ') || 'none'}; listed as not provided ${listed.join(', ') || 'none'}`);
  for (const [name, kernel] of NOT_PROVIDED) assert.ok(kernels.includes(kernel), `NOT_PROVIDED names ${kernel} (${name}), which is no kernel of the contract`);
});

it('missingKernels refuses a missing kernel that is not listed', () => {
  const b = backend();
  const stubbed = Object.assign(Object.create(b), { gemm: (): never => { throw new Error('not here'); } });
  assert.throws(() => missingKernels(stubbed, ['gemm']), new RegExp(`${b.name} does not provide gemm, which NOT_PROVIDED`));
  assert.deepEqual(missingKernels(b, ['gemm', 'conv2d']), []);
});
