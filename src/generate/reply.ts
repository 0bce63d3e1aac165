/**
 * One reply of a loaded model (load_generator.ts) to a prompt, streamed as text: what `generate`
 * prints and each turn of `chat`. The reply never runs past the model's positions, and its timings
 * (prefill: the time to the first token; decode: tokens per second after it) are measured.
 */
import type { Tokenizer } from '../data/tokenizer.js';
import { type CausalLm, type GenerateOptions, type GenerateResult, type StopReason, generateStream } from './generate.js';
import type { Generator } from './load_generator.js';
import { TextStream } from './text_stream.js';

export type ReplyOptions = Omit<GenerateOptions, 'decode' | 'onToken' | 'precision'> & {
  /** Leaving early (Ctrl-C): checked after each token. */
  aborted?: () => boolean;
};

export interface Reply {
  ids: number[];
  /** The text, cut before a stop string. */
  text: string;
  /** Why it ended: the generation's reason, or 'interrupted' when `aborted` said so (chat's Ctrl-C). */
  stopReason: StopReason | 'interrupted';
  promptTokens: number;
  /** Seconds to the first new token (the prompt's forward). */
  prefillSeconds: number;
  /** Seconds in all. */
  seconds: number;
}

export const DEFAULT_MAX_NEW_TOKENS = 128;

/**
 * A prompt's token ids as transformers encodes a plain text by default: the tokenizer's BOS (Llama 3)
 * then the text. An empty prompt starts from the end-of-document token (GPT-2's <|endoftext|>),
 * which is how a model trained on packed documents begins one.
 */
export function promptIds(tokenizer: Tokenizer, text: string): number[] {
  const ids = [...(tokenizer.bos === null ? [] : [tokenizer.bos]), ...tokenizer.encode(text)];
  if (ids.length > 0) return ids;
  if (tokenizer.eos !== null) return [tokenizer.eos];
  throw new Error('the prompt is empty, and the tokenizer has no end-of-document token to start from: give a prompt');
}

/** Where a reply's tokens come from: generateStream over the model here, or a pipeline of stages elsewhere. */
export type ReplyTokens = (prompt: readonly number[], options: GenerateOptions) => AsyncGenerator<number, GenerateResult>;

/** A generator whose weights may live elsewhere (then `tokens` is given). */
export type ReplyModel = Omit<Generator, 'model'> & { model?: CausalLm };

/** Generates after `prompt`, calling `onText` with each printable piece; resolves with the whole reply. */
export async function streamReply(g: ReplyModel, prompt: readonly number[], o: ReplyOptions, onText: (text: string) => void, source?: ReplyTokens): Promise<Reply> {
  const room = g.spec.context - prompt.length;
  if (room < 1) throw new Error(`the prompt has ${prompt.length} tokens; the model has ${g.spec.context} positions`);
  const maxNewTokens = Math.min(o.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS, room);
  const decode = (ids: number[]): string => g.tokenizer.decode(ids);
  const stream = new TextStream(decode, o.stopStrings ?? []);
  const start = performance.now();
  let first = 0;
  const eos = o.eosIds ?? g.eosIds;
  const options: GenerateOptions = { ...o, maxNewTokens, eosIds: eos, decode, precision: g.precision };
  if (!source && !g.model) throw new Error('streamReply: a generator without its model needs a token source');
  const tokens = source ? source(prompt, options) : generateStream(g.model!, prompt, options);
  const ids: number[] = [];
  let step = await tokens.next();
  let stopReason: Reply['stopReason'] = 'interrupted';
  while (!step.done) {
    first ||= performance.now();
    ids.push(step.value);
    // The end token itself is not part of the reply's text.
    const piece = eos.includes(step.value) ? '' : stream.push(step.value);
    if (piece) onText(piece);
    if (o.aborted?.()) {
      await tokens.return(undefined as never);
      break;
    }
    step = await tokens.next();
  }
  if (step.done) stopReason = step.value.stopReason;
  const rest = stream.finish();
  if (rest) onText(rest);
  const end = performance.now();
  return {
    ids, text: stream.text(), stopReason, promptTokens: prompt.length,
    prefillSeconds: ((first || end) - start) / 1000, seconds: (end - start) / 1000,
  };
}

/** The one-line summary of a reply: tokens, speed, stop reason. */
export function replySummary(r: Reply): string {
  const n = r.ids.length;
  const decodeSeconds = r.seconds - r.prefillSeconds;
  const rate = n > 1 && decodeSeconds > 0 ? `${((n - 1) / decodeSeconds).toFixed(1)} tok/s` : 'n/a tok/s';
  return `${n} tokens in ${r.seconds.toFixed(2)} s (${rate} decoding; prompt ${r.promptTokens} tokens in ${r.prefillSeconds.toFixed(2)} s), stop: ${r.stopReason}`;
}
