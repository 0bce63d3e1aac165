/**
 * Packed chat windows (data/chat_packing.ts): best-fit decreasing as TRL's pack_dataset places
 * examples (its documented example), each example's position ids from 0, no label that predicts the
 * next example's first token, the pad tail a sequence of its own; the loader gathers the position
 * ids with the windows and micro-batches cut them with the rest; --packing on plain text refused.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadChat } from '../../src/data/chat.js';
import { bestFitDecreasing, packedChatWindows } from '../../src/data/chat_packing.js';
import type { ChatTokens } from '../../src/data/chat_tokens.js';
import { IGNORE_INDEX, type TokenDataset } from '../../src/data/dataset.js';
import { loadDataset } from '../../src/data/load.js';
import { BatchLoader, type TokenBatch } from '../../src/data/loader.js';
import { makeTokenizer } from '../../src/data/tokenizer.js';
import { microBatches } from '../../src/train/loop/micro_batches.js';
import { tempDir } from '../helpers/cluster.js';

const example = (ids: number[], learnedFrom: number): ChatTokens => ({
  ids: Int32Array.from(ids), learned: Uint8Array.from(ids, (_, i) => (i >= learnedFrom ? 1 : 0)),
});

let dir = '';
before(() => {
  dir = tempDir('chat-packing');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('best-fit decreasing', () => {
  it('places examples as TRL\'s pack_dataset documents (lengths 5, 2, 3, 1 into 4: [0], [2, 3], [1])', () => {
    assert.deepEqual(bestFitDecreasing([5, 2, 3, 1], 4), [[0], [2, 3], [1]]);
  });

  it('takes the fullest window that still fits, the first to reach that room, and skips empty examples', () => {
    // 6 → A (room 4), 5 → B (room 5), 4 → A (room 0), 3 → B (room 2), 2 → B (room 0), 0 skipped.
    assert.deepEqual(bestFitDecreasing([3, 6, 0, 5, 4, 2], 10), [[1, 4], [3, 0, 5]]);
    // Equal rooms: the window that came to it first.
    assert.deepEqual(bestFitDecreasing([7, 7, 3], 10), [[0, 2], [1]]);
  });
});

describe('packed chat windows', () => {
  it('position ids restart at each example, the last token of each predicts nothing, the tail is its own sequence', () => {
    const data = packedChatWindows([example([1, 2, 3], 1), example([4, 5, 6, 7, 8], 2), example([9, 10], 0)], 8, 0, 16, 'chat-train');
    // Placed 5 (room 3), 3 (fits), 2 (new window).
    assert.equal(data.size, 2);
    assert.deepEqual(Array.from(data.inputs), [4, 5, 6, 7, 8, 1, 2, 3, 9, 10, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(Array.from(data.positions!), [0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 0, 1, 2, 3, 4, 5]);
    const I = IGNORE_INDEX;
    assert.deepEqual(Array.from(data.labels), [I, 6, 7, 8, I, 2, 3, I, 10, I, I, I, I, I, I, I]);
  });

  it('cuts an example longer than the window to its first T tokens', () => {
    const data = packedChatWindows([example([1, 2, 3, 4, 5, 6], 0)], 4, 0, 8, 'chat-train');
    assert.deepEqual(Array.from(data.inputs), [1, 2, 3, 4]);
    assert.deepEqual(Array.from(data.labels), [2, 3, 4, IGNORE_INDEX]);
  });
});

describe('--packing through loading and batching', () => {
  it('loadChat packs both splits; the loader and micro-batches carry the position ids', () => {
    const file = join(dir, 'p.jsonl');
    writeFileSync(file, ['abc', 'de', 'fghij', 'k', 'lmn'].map((c, i) => JSON.stringify({ prompt: `q${i}`, completion: c })).join('\n'));
    const data = loadChat({ file, tokenizer: makeTokenizer('bytes'), format: null, contextLength: 16, validationFraction: 0.2, packing: true });
    const train = data.train as TokenDataset;
    assert.ok(train.positions && data.test.positions, 'both splits packed');
    assert.ok(train.size < data.documents.train, `${data.documents.train} examples in ${train.size} windows`);
    const loader = new BatchLoader(train, Int32Array.from({ length: train.size }, (_, i) => train.size - 1 - i), train.size);
    const batch = loader.batchOf(Int32Array.from([train.size - 1, 0])) as TokenBatch;
    assert.deepEqual(Array.from(batch.positions!), [...train.positions.subarray((train.size - 1) * 16, train.size * 16), ...train.positions.subarray(0, 16)]);
    const micros = [...microBatches(train, batch, 1)] as TokenBatch[];
    assert.deepEqual(Array.from(micros[1].positions!), Array.from(train.positions.subarray(0, 16)));
    assert.throws(() => {
      const plain = join(dir, 'plain.txt');
      writeFileSync(plain, 'just text\n');
      loadDataset({ name: 'text', seed: 1, tokenTask: 'language-model', dataFile: plain, tokenizer: 'bytes', packing: true });
    }, /--packing: packs chat data .* is not chat/);
  });
});
