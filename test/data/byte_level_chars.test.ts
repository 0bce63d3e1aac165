/** GPT-2's byte-level alphabet (src/data/byte_level_chars.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BYTE_CHAR, CHAR_BYTE } from '../../src/data/byte_level_chars.js';

describe('the byte-level alphabet', () => {
  it('maps printable bytes to themselves, space to Ġ and newline to Ċ, as GPT-2\'s bytes_to_unicode does', () => {
    assert.equal(String.fromCharCode(BYTE_CHAR[0x41]), 'A');
    assert.equal(String.fromCharCode(BYTE_CHAR[0x20]), 'Ġ');
    assert.equal(String.fromCharCode(BYTE_CHAR[0x0a]), 'Ċ');
    assert.equal(String.fromCharCode(BYTE_CHAR[0x00]), '\u0100');
    assert.equal(String.fromCharCode(BYTE_CHAR[0xad]), '\u0143');
  });

  it('is one character a byte, and CHAR_BYTE undoes it', () => {
    assert.equal(new Set(BYTE_CHAR).size, 256);
    for (let b = 0; b < 256; b++) assert.equal(CHAR_BYTE[BYTE_CHAR[b]], b);
    assert.equal(CHAR_BYTE[0x20], -1, 'a space is not in the alphabet');
  });
});
