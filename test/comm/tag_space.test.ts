import assert from 'node:assert/strict';
import { test } from 'node:test';
import { P2P_SEQ_BASE } from '../../src/comm/collectives/sendrecv.js';
import { MAX_SPLITS, TagSpace, WORLD_HI_WORDS } from '../../src/comm/tag_space.js';
import { MAX_TAG } from '../../src/comm/transport.js';

test("the world's layout is the one before sub-groups: sequence numbers below 2^19, p2p from 2^19", () => {
  const world = new TagSpace();
  assert.equal(world.seqLimit, 2 ** 19);
  assert.equal(world.p2pBase, 2 ** 19);
  assert.equal(P2P_SEQ_BASE, 2 ** 19);
  assert.equal(WORLD_HI_WORDS * 2 ** 32, MAX_TAG);
  assert.ok(Number.isSafeInteger(MAX_TAG - 1));
});

test('split regions lie above the collectives and p2p ranges, disjoint, each a smaller layout of its own', () => {
  const space = new TagSpace();
  const regions = Array.from({ length: MAX_SPLITS }, (_, i) => space.splitRegion(i)!);
  assert.equal(regions[0].startHi, space.p2pBase * 2);
  for (let i = 1; i < regions.length; i++) assert.equal(regions[i].startHi, regions[i - 1].startHi + regions[i - 1].hiWords);
  const last = regions[regions.length - 1];
  assert.equal(last.startHi + last.hiWords, WORLD_HI_WORDS);
  assert.equal(space.splitRegion(MAX_SPLITS), null);
  const child = new TagSpace(regions[0].hiWords);
  assert.equal(child.seqLimit, 2 ** 14);
});

test('nesting stops where a share would be too small to keep collectives apart', () => {
  let space = new TagSpace();
  let depth = 0;
  for (;;) {
    const region = space.splitRegion(0);
    if (!region) break;
    space = new TagSpace(region.hiWords);
    depth++;
  }
  assert.equal(depth, 3);
  assert.throws(() => new TagSpace(12), /power of two of at least 16/);
});
