/** Byte-level BPE merges (src/data/byte_bpe.ts): the order Hugging Face's tokenizers merge in. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ByteLevelBpe } from '../../src/data/byte_bpe.js';
import { ByteLevelVocab } from '../../src/data/byte_level_vocab.js';
import { DataError } from '../../src/data/errors.js';

function bpe(tokens: string[], merges: string[], ignoreMerges = false): { encode: (piece: string) => string[] } {
  const model = new ByteLevelBpe(new ByteLevelVocab(tokens, new Uint8Array(tokens.length)), merges, ignoreMerges, 'm.gguf');
  return {
    encode: (piece) => {
      const ids: number[] = [];
      model.encode(piece, ids);
      return ids.map((id) => tokens[id]);
    },
  };
}

describe('ByteLevelBpe', () => {
  const tokens = ['a', 'b', 'c', 'd', 'ab', 'bc', 'abc', 'cd', 'abcd', 'aa', 'aaa', 'aaaa'];

  it('merges the pair of lowest rank first, whatever its place', () => {
    assert.deepEqual(bpe(tokens, ['b c', 'a b', 'a bc']).encode('abc'), ['abc'], 'bc first, then a+bc');
    assert.deepEqual(bpe(tokens, ['a b', 'b c']).encode('abc'), ['ab', 'c'], 'ab first leaves no bc');
    assert.deepEqual(bpe(tokens, ['c d', 'a b', 'ab cd']).encode('abcd'), ['abcd']);
  });

  it('merges the leftmost of equal pairs first', () => {
    const model = bpe(tokens, ['a a', 'aa aa']);
    assert.deepEqual(model.encode('aaa'), ['aa', 'a']);
    assert.deepEqual(model.encode('aaaa'), ['aaaa']);
    assert.deepEqual(model.encode('aaaaa'), ['aaaa', 'a']);
    assert.deepEqual(bpe(tokens, ['a a', 'aa a']).encode('aaa'), ['aaa'], 'the left pair merged, then its result with the rest');
  });

  it('keeps a pair given twice at its last rank, as the library\'s Map does', () => {
    assert.deepEqual(bpe(tokens, ['a b', 'b c', 'a b']).encode('abc'), ['a', 'bc']);
  });

  it('drops a character the vocabulary lacks, merging nothing across it', () => {
    assert.deepEqual(bpe(tokens, ['a b']).encode('aĠb'), ['a', 'b']);
    assert.deepEqual(bpe(tokens, ['a b']).encode('a🚀b'), ['a', 'b'], 'a code point outside the alphabet is one character');
  });

  it('takes a whole pre-token that is a token at once where ignoreMerges is set', () => {
    assert.deepEqual(bpe(tokens, ['a b', 'c d'], true).encode('abcd'), ['abcd']);
    assert.deepEqual(bpe(tokens, ['a b', 'c d'], false).encode('abcd'), ['ab', 'cd']);
  });

  it('merges a long pre-token (the heap grown past its first size)', () => {
    const out = bpe(tokens, ['a a', 'aa aa']).encode('a'.repeat(1001));
    assert.equal(out.length, 251);
    assert.deepEqual(out.slice(-2), ['aaaa', 'a']);
  });

  it('refuses a merge that is not two tokens, or whose halves or result the vocabulary lacks, naming file and merge', () => {
    const refused = (merges: string[], pattern: RegExp): void => assert.throws(() => bpe(tokens, merges), (e: unknown) => e instanceof DataError && e.file === 'm.gguf' && pattern.test(e.message));
    refused(['ab'], /tokenizer\.ggml\.merges\[0\] is "ab", not two tokens with a space between/);
    refused(['a b', 'a b c'], /merges\[1\] is "a b c"/);
    refused(['a x'], /merges\[0\] "a x" makes or joins "x", which tokenizer\.ggml\.tokens does not hold/);
    refused(['d a'], /merges\[0\] "d a" makes or joins "da"/);
  });
});
