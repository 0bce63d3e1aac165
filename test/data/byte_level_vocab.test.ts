/** A byte-level vocabulary held as bytes (src/data/byte_level_vocab.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ByteLevelVocab, emptySlots } from '../../src/data/byte_level_vocab.js';

const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

describe('ByteLevelVocab', () => {
  const tokens = ['a', 'b', 'ab', 'Ġthe', 'Ċ', '<|end|>', '中', 'Ã©', 'ab'];
  const added = Uint8Array.from([0, 0, 0, 0, 0, 1, 0, 0, 0]);
  const vocab = new ByteLevelVocab(tokens, added);

  it('finds a vocabulary token by its characters, and by two slices put together', () => {
    assert.equal(vocab.find('Ġthe'), 3);
    assert.equal(vocab.findJoined('xaby', 1, 2, 2, 3), 8, 'a + b: of two equal tokens the last');
    assert.equal(vocab.find('Ã©'), 7);
    assert.equal(vocab.find('abc'), -1);
    assert.equal(vocab.find(' the'), -1, 'a space is not a character of the alphabet');
  });

  it('does not find added tokens or tokens outside the alphabet by characters', () => {
    assert.equal(vocab.find('<|end|>'), -1);
    assert.equal(vocab.find('中'), -1);
  });

  it('holds each token\'s bytes: the alphabet read as bytes, an added token\'s text (and a token outside the alphabet) as UTF-8', () => {
    assert.equal(decode(vocab.bytesOf(3)), ' the');
    assert.equal(decode(vocab.bytesOf(4)), '\n');
    assert.equal(decode(vocab.bytesOf(5)), '<|end|>');
    assert.equal(decode(vocab.bytesOf(7)), 'é', 'Ã© is the alphabet\'s spelling of é\'s two bytes');
    assert.equal(decode(vocab.bytesOf(6)), '中');
    assert.equal(vocab.size, tokens.length);
  });

  it('holds text outside the alphabet as TextEncoder writes it: 1- to 4-byte characters, a lone surrogate as U+FFFD', () => {
    const texts = ['a é 中 🚀', '\ud800x', 'x\udc00', '🚀\ud83d'];
    const held = new ByteLevelVocab(texts, Uint8Array.from(texts, () => 1));
    texts.forEach((t, id) => assert.deepEqual([...held.bytesOf(id)], [...new TextEncoder().encode(t)], JSON.stringify(t)));
  });

  it('sizes a table at least 1.5 times its keys, a power of two, all empty', () => {
    assert.equal(emptySlots(151_936).length, 262_144);
    assert.equal(emptySlots(1).length, 2);
    assert.ok(emptySlots(100).every((s) => s === -1));
  });
});
