import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ElasticCursor } from '../../src/data/elastic_cursor.js';
import { checkExactlyOnce } from '../../src/validate/exactly_once.js';

const dir = mkdtempSync(join(tmpdir(), 'smolcluster-once-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Step records of an elastic run over `size` samples: `members` per step (by step), batch 2. */
function records(size: number, membersAt: (step: number) => number, epochs = 1): object[] {
  const cursor = new ElasticCursor(size, 3);
  const out: object[] = [];
  for (let step = 0; cursor.position.epoch < epochs; step++) {
    const n = membersAt(step);
    const before = { ...cursor.position };
    for (let r = 0; r < n; r++) {
      cursor.position = { ...before };
      const t = cursor.take(r, n, 2);
      out.push({ kind: 'step', step, rank: r, samples: t.indices.length, member_epoch: n, members: n, member_rank: r, data_epoch: t.epoch,
        data_offset: t.offset, data_global: t.global, index_sum: t.indices.reduce((a, b) => a + b, 0) });
    }
  }
  return out;
}

function check(name: string, recs: object[], size: number) {
  const file = join(dir, name);
  writeFileSync(file, recs.map((r) => JSON.stringify(r)).join('\n'));
  return checkExactlyOnce(file, size, 3);
}

describe('checkExactlyOnce', () => {
  it('accepts an epoch re-sharded from 3 to 2 members, and counts a missing record as an unrecorded share', () => {
    const recs = records(25, (s) => (s < 2 ? 3 : 2));
    assert.deepEqual(check('ok', recs, 25), { epochsExact: 1, epochsSeen: 1, steps: 6, supersededRecords: 0, unrecordedShares: 0, problems: [] });
    assert.equal(check('missing', recs.slice(1), 25).unrecordedShares, 1);
  });

  it('finds a global batch taken twice, a skipped one, and a member that trained on the wrong samples', () => {
    const recs = records(20, () => 2) as Array<Record<string, number>>;
    const twice = recs.map((r) => (r.step === 3 ? { ...r, data_offset: 4 } : r));
    assert.match(check('twice', twice, 20).problems.join('\n'), /seen twice/);
    assert.match(check('skipped', recs.filter((r) => r.step !== 2), 20).problems.join('\n'), /samples skipped/);
    const wrong = recs.map((r) => (r.step === 1 && r.rank === 0 ? { ...r, index_sum: r.index_sum + 1 } : r));
    assert.match(check('wrong', wrong, 20).problems.join('\n'), /step 1 rank 0: trained on/);
  });
});
