/**
 * One chat example as token ids and which of them are learned, as TRL's SFTTrainer prepares it:
 *   - messages: the conversation rendered with the chat template; the assistant turns are learned
 *     (`assistant_only_loss`). Where the template marks them with `{% generation %}` blocks (as
 *     transformers' `return_assistant_tokens_mask` reads them) those blocks are learned; else each
 *     assistant turn is what its message adds to the conversation before it rendered with the
 *     generation prompt (its content and end-of-turn text).
 *   - conversational prompt/completion: the tokens after the prompt rendered with the generation
 *     prompt are learned (`completion_only_loss`);
 *   - plain prompt/completion: no template; the text is prompt + completion + the end-of-sequence
 *     text (TRL appends it), framed as the tokenizer frames a text (its BOS), the tokens after the
 *     prompt's own learned.
 * The text is tokenized whole (as transformers does). A conversation's learned spans must fall on
 * token boundaries, which holds for templates whose turns end in special tokens or newlines; one
 * that does not is refused naming the example.
 */
import type { ChatExample, ChatTurn } from './chat_examples.js';
import { DataError } from './errors.js';
import type { Tokenizer } from './tokenizer.js';

/** What renders a conversation: a chat template (generate/chat_template.ts makes one). */
export interface ChatRenderer {
  /** `tools`: the functions' JSON schemas, as transformers' apply_chat_template(tools=...) passes them. */
  render(messages: readonly ChatTurn[], opts?: { addGenerationPrompt?: boolean; tools?: readonly unknown[] }): string;
}

/** A chat template and whether its source had `{% generation %}` blocks (markGenerationBlocks turned them into marks). */
export interface ChatFormat {
  renderer: ChatRenderer;
  marked: boolean;
}

export interface ChatTokens {
  ids: Int32Array;
  /** 1 where the token is learned (its label kept), 0 where it is context only. */
  learned: Uint8Array;
}

const START = '\uE000';
const END = '\uE001';
// transformers' Jinja environment has trim_blocks and lstrip_blocks: a `{% generation %}` tag eats
// the spaces before it on its line and the newline after it, which an expression tag would not.
const GENERATION_TAG = /(^[ \t]*)?\{%(-?)\s*(end)?generation\s*(-?)%\}(\n)?/gm;

/**
 * The template source with its `{% generation %}` / `{% endgeneration %}` tags turned into
 * expressions that print a private-use mark (which render() output is then split at); null when
 * the source has no such tags.
 */
export function markGenerationBlocks(source: string): string | null {
  if (!source.match(GENERATION_TAG)) return null;
  return source.replace(GENERATION_TAG, (_all, _lead, left: string, end: string | undefined, right: string) =>
    `{{${left} '${end ? END : START}' ${right}}}`);
}

/** A piece of rendered text and whether it is learned. */
interface Piece {
  text: string;
  learned: boolean;
}

/** The example's token ids and learned mask; `where` (file: line) names it in errors. */
export function chatTokens(example: ChatExample, format: ChatFormat | null, tokenizer: Tokenizer, where: string): ChatTokens {
  if ('prompt' in example && typeof example.prompt === 'string') return plainTokens(example as { prompt: string; completion: string }, tokenizer);
  if (!format) throw new DataError(where, 'is a conversation, and the tokenizer has no chat template (tokenizer_config.json chat_template or chat_template.jinja)');
  if ('messages' in example) return encodePieces(conversationPieces(example.messages, format, where, example.tools), tokenizer, where);
  return completionTokens(example.prompt as ChatTurn[], example.completion as ChatTurn[], format, tokenizer);
}

/** TRL's plain prompt/completion: [BOS] + prompt + completion + EOS text, learned after the prompt's own tokens (as TRL counts them). */
function plainTokens(example: { prompt: string; completion: string }, tokenizer: Tokenizer): ChatTokens {
  const eos = tokenizer.eosText ?? '';
  const completion = example.completion.endsWith(eos) ? example.completion : example.completion + eos;
  return maskedAfter(tokenizer.encode(example.prompt), tokenizer.encode(example.prompt + completion), tokenizer.bos === null ? [] : [tokenizer.bos]);
}

function conversationPieces(messages: readonly ChatTurn[], format: ChatFormat, where: string, tools?: readonly unknown[]): Piece[] {
  if (!messages.some((m) => m.role === 'assistant')) throw new DataError(where, 'has no assistant message: nothing to learn');
  const text = format.renderer.render(messages, { tools });
  if (format.marked) return markedPieces(text, where);
  const pieces: Piece[] = [];
  let at = 0;
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const before = format.renderer.render(messages.slice(0, i), { addGenerationPrompt: true, tools });
    const after = format.renderer.render(messages.slice(0, i + 1), { tools });
    if (!after.startsWith(before) || !text.startsWith(after) || before.length < at) {
      throw new DataError(where, `the chat template does not render assistant message ${i} as an extension of the conversation before it; add {% generation %} blocks to the template to mark the learned text`);
    }
    pieces.push({ text: text.slice(at, before.length), learned: false }, { text: text.slice(before.length, after.length), learned: true });
    at = after.length;
  });
  pieces.push({ text: text.slice(at), learned: false });
  return pieces;
}

/**
 * TRL's conversational prompt/completion: the whole conversation's tokens, the first as many as the
 * prompt rendered with the generation prompt has not learned (as TRL counts them, even where that
 * prompt's tokens do not prefix the whole's: TRL then warns).
 */
function completionTokens(prompt: readonly ChatTurn[], completion: readonly ChatTurn[], format: ChatFormat, tokenizer: Tokenizer): ChatTokens {
  const unmark = (s: string): string => (format.marked ? s.replaceAll(START, '').replaceAll(END, '') : s);
  const head = tokenizer.encode(unmark(format.renderer.render(prompt, { addGenerationPrompt: true })));
  return maskedAfter(head, tokenizer.encode(unmark(format.renderer.render([...prompt, ...completion]))), []);
}

/** prefix + ids, learned from the end of prefix + head on (head: the prompt's own tokens). */
function maskedAfter(head: Int32Array, ids: Int32Array, prefix: number[]): ChatTokens {
  const all = Int32Array.from([...prefix, ...ids]);
  const learned = new Uint8Array(all.length);
  learned.fill(1, Math.min(prefix.length + head.length, all.length));
  return { ids: all, learned };
}

/** The rendered text split at its generation marks. */
function markedPieces(text: string, where: string): Piece[] {
  const pieces: Piece[] = [];
  let learned = false;
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== START && c !== END) continue;
    if ((c === START) === learned) throw new DataError(where, `the chat template's {% ${learned ? '' : 'end'}generation %} blocks are unbalanced (or the text holds U+E000/U+E001)`);
    pieces.push({ text: text.slice(from, i), learned });
    learned = c === START;
    from = i + 1;
  }
  if (learned) throw new DataError(where, 'the chat template opens a {% generation %} block it never closes');
  pieces.push({ text: text.slice(from), learned: false });
  if (!pieces.some((p) => p.learned && p.text !== '')) throw new DataError(where, 'has no text inside the chat template\'s {% generation %} blocks: nothing to learn');
  return pieces;
}

/**
 * The pieces' text tokenized whole, each token learned when it lies in a learned piece; the piece
 * boundaries must be token boundaries of the whole text.
 */
function encodePieces(pieces: readonly Piece[], tokenizer: Tokenizer, where: string): ChatTokens {
  const parts = pieces.filter((p) => p.text !== '').map((p) => ({ ids: tokenizer.encode(p.text), learned: p.learned }));
  const length = parts.reduce((n, p) => n + p.ids.length, 0);
  const ids = new Int32Array(length);
  const learned = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    ids.set(p.ids, at);
    if (p.learned) learned.fill(1, at, at + p.ids.length);
    at += p.ids.length;
  }
  const whole = tokenizer.encode(pieces.map((p) => p.text).join(''));
  if (whole.length !== length || whole.some((id, i) => id !== ids[i])) {
    throw new DataError(where, 'a learned span of the rendered chat does not start or end on a token boundary (the template joins an assistant turn to the text around it)');
  }
  return { ids, learned };
}
