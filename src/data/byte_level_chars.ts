/**
 * GPT-2's byte-level alphabet (its `bytes_to_unicode`): each of the 256 byte values as one
 * printable character — the printable Latin-1 bytes as themselves, the others (controls, space,
 * 0x7F–0xA0, 0xAD) as U+0100 onwards in byte order — so a byte-level BPE vocabulary is text.
 */

/** The character of each byte value, as a UTF-16 code unit. */
export const BYTE_CHAR: Uint16Array = (() => {
  const chars = new Uint16Array(256);
  let next = 0x100;
  for (let b = 0; b < 256; b++) chars[b] = isPrintable(b) ? b : next++;
  return chars;
})();

/** The byte each character stands for, by code unit (below 0x144); -1 where a code unit is none. */
export const CHAR_BYTE: Int16Array = (() => {
  const bytes = new Int16Array(0x144).fill(-1);
  for (let b = 0; b < 256; b++) bytes[BYTE_CHAR[b]] = b;
  return bytes;
})();

function isPrintable(b: number): boolean {
  return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}
