/**
 * Text as tokens come: each new token's text, printable at once. A token may end in the middle of a
 * multi-byte character (byte-level BPE splits UTF-8 anywhere), which decodes as U+FFFD until the
 * next token completes it: such a tail is held back. So is a tail that may be the start of a stop
 * string, and a stop string itself is never emitted, so what was printed is always a prefix of the
 * final text that generate() returns (cut before the stop string).
 *
 * The whole reply is decoded again for each token (a tokenizer's decode is not additive at the
 * edges); for replies of hundreds of tokens that costs far less than the forwards.
 */
const REPLACEMENT = 0xfffd;

export class TextStream {
  private readonly ids: number[] = [];
  private emitted = 0;
  private stopped = false;

  constructor(private readonly decode: (ids: number[]) => string, private readonly stops: readonly string[] = []) {}

  /** The text `id` makes printable (possibly ''). */
  push(id: number): string {
    if (this.stopped) return '';
    this.ids.push(id);
    const text = this.decode(this.ids);
    return this.take(text, this.safeEnd(text));
  }

  /** Whatever is left once generation ended (the held-back tail, up to any stop string). */
  finish(): string {
    const text = this.decode(this.ids);
    const cut = firstStop(text, this.stops);
    return this.take(text, cut >= 0 ? cut : text.length);
  }

  /** The whole text so far, up to any stop string. */
  text(): string {
    const text = this.decode(this.ids);
    const cut = firstStop(text, this.stops);
    return cut >= 0 ? text.slice(0, cut) : text;
  }

  private take(text: string, end: number): string {
    if (end <= this.emitted) return '';
    const out = text.slice(this.emitted, end);
    this.emitted = end;
    return out;
  }

  /** How much of `text` may be printed now. */
  private safeEnd(text: string): number {
    const cut = firstStop(text, this.stops);
    if (cut >= 0) {
      this.stopped = true;
      return cut;
    }
    let end = text.length - longestStopPrefix(text, this.stops);
    while (end > this.emitted && text.charCodeAt(end - 1) === REPLACEMENT) end--;
    return end;
  }
}

function firstStop(text: string, stops: readonly string[]): number {
  const at = stops.map((s) => text.indexOf(s)).filter((i) => i >= 0);
  return at.length ? Math.min(...at) : -1;
}

/** The longest tail of `text` that is a proper prefix of a stop string. */
function longestStopPrefix(text: string, stops: readonly string[]): number {
  let best = 0;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, text.length); k > best; k--) {
      if (text.endsWith(s.slice(0, k))) {
        best = k;
        break;
      }
    }
  }
  return best;
}
