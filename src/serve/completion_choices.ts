/**
 * The choices of a completion or chat reply, whole or streamed: each choice's text (TextStream:
 * the end id left out, a stop string cut, a tail held back while it may still become one) with, when
 * asked, its tokens' log-probabilities, and with completions' echo the prompt (and its
 * log-probabilities) first. Streamed, a chunk carries the log-probabilities of the tokens whose text
 * it carries, so the tokens held back travel with the text that releases them; the last chunk of a
 * choice carries the rest (a stop string's and the end id's tokens among them: every generated token
 * is scored, as completion_tokens counts them).
 */
import type { PositionLogprobs } from '../generate/logprobs.js';
import type { GenerateResult, Sequence } from '../generate/sequence.js';
import { TextStream } from '../generate/text_stream.js';
import { type ScoredToken, chatLogprobs, completionLogprobs } from './logprobs_format.js';
import * as out from './responses.js';
import { ToolCallStream } from './tool_call_stream.js';
import { type ToolSyntax, parseToolCalls } from './tool_calls.js';

export interface ChoicesSetup {
  chat: boolean;
  envelope: out.Envelope;
  n: number;
  decode: (ids: number[]) => string;
  /** The ids that end a reply, left out of its text. */
  eos: ReadonlySet<number>;
  stopStrings: readonly string[];
  /** Log-probabilities asked. */
  logprobs: boolean;
  /** Completions' echo, per choice: its prompt as it comes back (its text, and its ids for the log-probabilities). */
  echoes: readonly { text: string; ids: readonly number[] }[] | null;
  /**
   * Chat with tools (tool_choice not none): the syntax their calls are parsed back from. Streamed,
   * Hermes' content streams up to a `<tool_call>` and the calls come as tool_calls deltas at the
   * end; Llama 3.1's bare JSON cannot be told from text until it ends, so its content is held.
   */
  tools?: ToolSyntax | null;
}

/** The prompt's tokens scored (the first has no score), as the echo shows them. */
function scoredPrompt(ids: readonly number[], scores: readonly PositionLogprobs[] | undefined): ScoredToken[] {
  return ids.map((id, t) => ({ id, scores: t === 0 ? null : scores?.[t - 1] ?? null }));
}

export class CompletionChoices {
  private readonly texts: TextStream[];
  /** Per choice: the scores of tokens whose text has not been sent. */
  private readonly pending: PositionLogprobs[][];
  /** Per choice: the characters of token text sent so far (text_offset's base; vLLM's). */
  private readonly offsets: number[];
  private readonly started: boolean[];
  /** Per choice, with tools: the characters of content streamed so far. */
  private readonly sent: number[];
  /** Per choice, with Hermes tools: the whole reply so far, and its calls streamed from it. */
  private readonly wholes: TextStream[] = [];
  private readonly calls: ToolCallStream[] = [];

  constructor(private readonly s: ChoicesSetup, private readonly send: (chunk: object) => void = () => {}) {
    const held = s.tools === 'hermes' ? [...s.stopStrings, '<tool_call>'] : s.stopStrings;
    this.texts = Array.from({ length: s.n }, () => new TextStream(s.decode, held));
    this.sent = Array.from({ length: s.n }, () => 0);
    if (s.tools === 'hermes') {
      this.wholes = Array.from({ length: s.n }, () => new TextStream(s.decode, s.stopStrings));
      this.calls = Array.from({ length: s.n }, () => new ToolCallStream());
    }
    this.pending = Array.from({ length: s.n }, () => []);
    this.offsets = Array.from({ length: s.n }, () => 0);
    this.started = Array.from({ length: s.n }, () => false);
  }

  private readonly tokenText = (id: number): string => this.s.decode([id]);

  /** Streamed: each choice's first chunk, before its first token (chat: its role; completions with echo: the prompt). */
  private start(choice: number, promptScores: readonly PositionLogprobs[] | undefined): void {
    if (this.started[choice]) return;
    this.started[choice] = true;
    if (this.s.chat) return this.send(out.chatChunk(this.s.envelope, choice, { role: 'assistant', content: '' }, null));
    const echo = this.s.echoes?.[choice];
    if (!echo) return;
    const logprobs = this.s.logprobs ? this.legacy(choice, scoredPrompt(echo.ids, promptScores)) : null;
    this.send(out.completionChunk(this.s.envelope, { index: choice, text: echo.text, finish: null, logprobs }));
  }

  /** Streamed: a new token of `choice`, sent as a chunk once it makes text printable. */
  token(choice: number, id: number, sequence: Sequence): void {
    this.start(choice, sequence.promptLogprobs ?? undefined);
    if (this.s.logprobs) this.pending[choice].push(sequence.logprobs[sequence.logprobs.length - 1]);
    const piece = this.s.eos.has(id) ? '' : this.texts[choice].push(id);
    if (this.s.tools === 'hermes' && !this.s.eos.has(id)) {
      this.wholes[choice].push(id);
      this.sendCalls(choice, this.wholes[choice].text());
    }
    if (!piece || this.s.tools === 'llama3') return;
    this.sent[choice] += piece.length;
    this.sendText(choice, piece, null);
  }

  /** Hermes: the tool_calls deltas the reply's text so far adds. */
  private sendCalls(choice: number, text: string): void {
    for (const delta of this.calls[choice].update(text)) this.send(out.chatChunk(this.s.envelope, choice, { tool_calls: [delta] }, null));
  }

  /** Streamed: each choice's last chunk (the text held back, its finish reason, the scores not yet sent). */
  end(results: readonly GenerateResult[]): void {
    results.forEach((r, choice) => {
      this.start(choice, r.promptLogprobs);
      if (this.s.tools) return this.endWithTools(choice, r);
      this.sendText(choice, this.texts[choice].finish(), out.finishReason(r.stopReason));
    });
  }

  /**
   * A choice's end with tools: Hermes' calls have streamed as they came (their last deltas now);
   * Llama 3.1's come now, a delta naming each call, then its arguments; or the content held back.
   */
  private endWithTools(choice: number, r: GenerateResult): void {
    const text = this.wholeText(r);
    if (this.s.tools === 'hermes') {
      this.sendCalls(choice, text);
      if (this.calls[choice].called) return this.sendText(choice, '', r.stopReason === 'length' ? 'length' : 'tool_calls');
      return this.sendText(choice, text.slice(this.sent[choice]), out.finishReason(r.stopReason));
    }
    const { calls } = parseToolCalls(text, this.s.tools!);
    if (calls.length === 0) return this.sendText(choice, text.slice(this.sent[choice]), out.finishReason(r.stopReason));
    calls.forEach((c, index) => {
      this.send(out.chatChunk(this.s.envelope, choice, { tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.function.name, arguments: '' } }] }, null));
      this.send(out.chatChunk(this.s.envelope, choice, { tool_calls: [{ index, function: { arguments: c.function.arguments } }] }, null));
    });
    this.sendText(choice, '', 'tool_calls');
  }

  /** A result's whole text: the end ids left out, cut before a stop string. */
  private wholeText(r: GenerateResult): string {
    const text = new TextStream(this.s.decode, this.s.stopStrings);
    for (const id of r.ids) if (!this.s.eos.has(id)) text.push(id);
    return text.text();
  }

  private sendText(choice: number, text: string, finish: string | null): void {
    const scores = this.pending[choice].splice(0);
    if (this.s.chat) {
      const logprobs = this.s.logprobs ? chatLogprobs(scores, this.tokenText) : null;
      return this.send(out.chatChunk(this.s.envelope, choice, text || finish === null ? { content: text } : {}, finish, logprobs));
    }
    const logprobs = this.s.logprobs ? this.legacy(choice, scores.map((x) => ({ id: x.id, scores: x }))) : null;
    this.send(out.completionChunk(this.s.envelope, { index: choice, text, finish, logprobs }));
  }

  /** The legacy logprobs of `tokens`, their offsets continuing the choice's (the offset then moved past them). */
  private legacy(choice: number, tokens: readonly ScoredToken[]): object {
    const l = completionLogprobs(tokens, this.tokenText, this.offsets[choice]);
    this.offsets[choice] += l.tokens.reduce((sum, t) => sum + t.length, 0);
    return l;
  }

  /** The whole reply's choices from the results. */
  whole(results: readonly GenerateResult[]): out.Choice[] {
    return results.map((r, index) => {
      const text = { text: (): string => this.wholeText(r) };
      const finish = out.finishReason(r.stopReason);
      const echo = this.s.echoes?.[index];
      const logprobs = this.s.logprobs ? chatLogprobs(r.logprobs ?? [], this.tokenText) : null;
      if (this.s.chat && this.s.tools) {
        const { content, calls } = parseToolCalls(text.text(), this.s.tools);
        if (calls.length > 0) return { index, text: content ?? '', finish: 'tool_calls', logprobs, toolCalls: calls };
      }
      if (this.s.chat) return { index, text: text.text(), finish, logprobs };
      const scored = [...(echo ? scoredPrompt(echo.ids, r.promptLogprobs) : []), ...(r.logprobs ?? []).map((x) => ({ id: x.id, scores: x }))];
      return { index, text: (echo?.text ?? '') + text.text(), finish, logprobs: this.s.logprobs ? completionLogprobs(scored, this.tokenText) : null };
    });
  }
}
