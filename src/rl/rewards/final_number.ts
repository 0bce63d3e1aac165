/**
 * The final numeric answer of a text, as math-reasoning rewards read it: GSM8K's `#### 42` (the number
 * after the last `####`), else the last `\boxed{…}`'s number, else the last number anywhere in the
 * text. Thousands commas and `$` are ignored ("$1,234.50" is 1234.5); a
 * leading minus is kept; a trailing period ends a sentence, not the number. Fractions (`\frac{1}{2}`,
 * `1/2`) are not read as one number.
 */

const NUMBER = /-?\d[\d,]*(?:\.\d+)?|-?\.\d+/g;

/** The text's final number, or null when it has none. */
export function finalNumber(text: string): number | null {
  const marked = afterLastMarker(text);
  if (marked !== null) return lastNumber(marked, true);
  const boxed = lastBoxed(text);
  if (boxed !== null) return lastNumber(boxed, true);
  return lastNumber(text, false);
}

/** The text after the last `####` (GSM8K's answer line), or null. */
function afterLastMarker(text: string): string | null {
  const at = text.lastIndexOf('####');
  return at >= 0 ? text.slice(at + 4) : null;
}

/** The contents of the last `\boxed{…}` (braces inside it balanced), or null. */
function lastBoxed(text: string): string | null {
  const at = text.lastIndexOf('\\boxed{');
  if (at < 0) return null;
  let depth = 0;
  const start = at + '\\boxed{'.length;
  for (let i = start; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && depth-- === 0) return text.slice(start, i);
  }
  return null; // unclosed: no answer given
}

/** The first (`first`: an answer slot's number) or last number of a text, `$` and commas stripped. */
function lastNumber(text: string, first: boolean): number | null {
  const found = [...text.replace(/\$/g, '').matchAll(NUMBER)].map((m) => m[0]);
  const pick = first ? found[0] : found.at(-1);
  if (pick === undefined) return null;
  const value = Number(pick.replace(/,/g, ''));
  return Number.isFinite(value) ? value : null;
}

/** Whether two numbers are equal as answers (a relative 1e-9 absorbs decimal parsing). */
export function sameNumber(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}
