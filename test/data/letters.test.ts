import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DataError } from '../../src/data/errors.js';
import { defaultLettersDir, loadLetters, parseLetters } from '../../src/data/letters.js';

const row = (label: number): string => `${Array.from({ length: 16 }, (_, i) => i % 16).join(',')},${label}`;

test('the packaged letters data: 11 shards of 1,500 rows and 3,500 validation rows, labels 0-25', () => {
  const d = loadLetters(defaultLettersDir());
  assert.deepEqual(d.train.map((s) => s.name), Array.from({ length: 11 }, (_, i) => `train_letters${i + 1}.txt`));
  assert.ok(d.train.every((s) => s.rows === 1500 && s.features.length === 1500 * 16));
  assert.equal(d.validation.rows, 3500);
  const labels = new Set(d.validation.labels);
  assert.equal(labels.size, 26);
  // First row of UCI: T (19) with features 2,8,3,5,...
  assert.equal(d.train[0].labels[0], 19);
  assert.deepEqual([...d.train[0].features.subarray(0, 4)], [2, 8, 3, 5]);
});

test('malformed rows are reported with the file and the line', () => {
  assert.throws(() => parseLetters(`${row(1)}\n1,2,3\n`, 'f.txt'), (e: Error) => e instanceof DataError && /^f\.txt: line 2: expected 17 comma-separated columns.*got 3/.test(e.message));
  assert.throws(() => parseLetters(`${row(1)}\n${row(26)}`, 'f.txt'), /f\.txt: line 2: label 26 is out of range \(0–25\)/);
  assert.throws(() => parseLetters(`${row(1)}\n${row(2)}\n${row(3).replace('3,', 'x,')}`, 'f.txt'), /f\.txt: line 3, column 4: "x" is not an integer/);
  assert.throws(() => parseLetters('\n', 'f.txt'), /f\.txt: no rows/);
  assert.equal(parseLetters(`${row(0)}\r\n${row(25)}\r\n`, 'f.txt').rows, 2);
});

test('a folder without training files, or without the validation file, is refused by name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'letters-'));
  assert.throws(() => loadLetters(dir), (e: Error) => e instanceof DataError && e.message.startsWith(dir) && /no training files/.test(e.message));
  writeFileSync(join(dir, 'train_letters1.txt'), row(3));
  assert.throws(() => loadLetters(dir), /validate_letters\.txt: missing/);
  assert.throws(() => loadLetters(join(dir, 'nope')), /not a folder/);
});
