import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { runInNewContext } from 'node:vm';
import { collectGarbage } from '../../src/util/collect_garbage.js';

/** A WeakRef to an object nothing else holds, made in an earlier turn (a WeakRef's target lives to the end of the turn that made it). */
async function unheldObject(): Promise<WeakRef<object>> {
  const ref = new WeakRef({ values: new Float64Array(1 << 16) });
  await nextTurn();
  return ref;
}

test('collects an object nothing holds any more, in the old generation too', async () => {
  const young = await unheldObject();
  collectGarbage();
  assert.equal(young.deref(), undefined);
  // Survived a collection (promoted), then let go: only a full collection frees it.
  let kept: object | undefined = { values: new Float64Array(1 << 16) };
  const old = new WeakRef(kept);
  await nextTurn();
  collectGarbage();
  assert.notEqual(old.deref(), undefined);
  kept = undefined;
  await nextTurn();
  collectGarbage();
  assert.equal(old.deref(), undefined);
});

test('leaves no gc to later contexts', () => {
  collectGarbage();
  assert.equal(runInNewContext('typeof gc'), 'undefined');
});
