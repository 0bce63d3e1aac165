/** JSONL records (src/data/jsonl_records.ts): blank lines skipped, each record named by file and line, bad lines and files refused by name. */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { readJsonlRecords } from '../../src/data/jsonl_records.js';
import { tempDir } from '../helpers/cluster.js';

const dir = tempDir('jsonl-records');
after(() => rmSync(dir, { recursive: true, force: true }));

it('reads each non-blank line as an object named by its line; refuses what is not', () => {
  const file = join(dir, 'a.jsonl');
  writeFileSync(file, '{"a": 1}\n\n  \n{"b": [2]}\n');
  assert.deepEqual(readJsonlRecords(file, ''), [{ record: { a: 1 }, where: `${file}: line 1` }, { record: { b: [2] }, where: `${file}: line 4` }]);
  writeFileSync(file, '{"a": 1}\n[1, 2]\n');
  assert.throws(() => readJsonlRecords(file, ''), new RegExp(`${file}: line 2: is not a JSON object`));
  writeFileSync(file, '{"a": 1}\n{oops\n');
  assert.throws(() => readJsonlRecords(file, ''), /line 2: is not JSON/);
  assert.throws(() => readJsonlRecords(join(dir, 'none.jsonl'), '--task takes a JSONL file'), /none\.jsonl: cannot be read \(ENOENT\): --task takes a JSONL file/);
});
