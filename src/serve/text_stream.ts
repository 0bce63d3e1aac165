/**
 * Streamed text from generated token ids: each new token's text is the growth of the decoded text
 * of all ids so far (a token can end inside a multi-byte character, which decodes to U+FFFD until
 * the next token completes it: held back), and text that could be the start of a stop string is
 * held back until it is known not to be one, so a stop string never reaches the client.
 */
import { stopAt } from '../generate/sequence.js';

export class TextStream {
  private sent = 0;
  private readonly longestStop: number;

  constructor(private readonly decode: (ids: number[]) => string, private readonly stops: readonly string[]) {
    this.longestStop = Math.max(0, ...stops.map((s) => s.length));
  }

  /** The text of `ids` not yet sent; `final`: generation has ended (send what is left, cut before a stop string). */
  next(ids: number[], final: boolean): string {
    let text = this.decode(ids);
    const cut = stopAt(text, this.stops);
    if (cut >= 0) text = text.slice(0, cut);
    else if (!final) {
      while (text.endsWith('\uFFFD')) text = text.slice(0, -1);
      text = text.slice(0, Math.max(this.sent, text.length - (this.longestStop - 1 > 0 ? this.longestStop - 1 : 0)));
    }
    if (text.length <= this.sent) return '';
    const piece = text.slice(this.sent);
    this.sent = text.length;
    return piece;
  }
}
