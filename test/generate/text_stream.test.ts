/**
 * TextStream: what is printed as tokens come is always a prefix of the final text — a multi-byte
 * character split across tokens is held until complete, a tail that may begin a stop string is held,
 * and a stop string is never printed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TextStream } from '../../src/generate/text_stream.js';

/** The bytes tokenizer's decode: one token per UTF-8 byte. */
const bytes = (ids: number[]): string => new TextDecoder().decode(Uint8Array.from(ids));
const idsOf = (text: string): number[] => [...new TextEncoder().encode(text)];

function run(text: string, stops: string[] = []): { pieces: string[]; rest: string; whole: string } {
  const s = new TextStream(bytes, stops);
  const pieces = idsOf(text).map((id) => s.push(id));
  return { pieces, rest: s.finish(), whole: s.text() };
}

describe('TextStream', () => {
  it('never prints half a character: each of 日本 and 🙂 appears whole on its last byte', () => {
    const { pieces, rest } = run('a日本🙂b');
    assert.deepEqual(pieces, ['a', '', '', '日', '', '', '本', '', '', '', '🙂', 'b']);
    assert.equal(rest, '');
    assert.ok(!pieces.join('').includes('\ufffd'));
  });

  it('holds back a possible stop string and prints none of it; the text is cut before it', () => {
    const { pieces, rest, whole } = run('one\nUser: two', ['\nUser:']);
    assert.equal(pieces.join('') + rest, 'one');
    assert.equal(whole, 'one');
    // "\nUs" could still be "\nUser:": held back, not printed, until it is (or is not).
    const s = new TextStream(bytes, ['\nUser:']);
    assert.equal(idsOf('hi\nUs').map((id) => s.push(id)).join(''), 'hi');
    assert.equal(idsOf('ed').map((id) => s.push(id)).join(''), '\nUsed');
  });

  it('prints an invalid byte at the end, once generation ended', () => {
    const s = new TextStream(bytes);
    assert.equal(s.push(0x61), 'a');
    assert.equal(s.push(0xe6), '');
    assert.equal(s.finish(), '\ufffd');
  });
});
