/**
 * One generation's state, whatever drives its forwards (generate() alone, or a batch of requests):
 * its options, its own seeded Rng, the ids seen so far (for the repetition penalty) and generated,
 * the stop rules — max new tokens, an EOS id, a stop string in the decoded text — and, when asked,
 * the log-probabilities of its prompt's and chosen tokens.
 */
import { Rng } from '../util/rng.js';
import { type PositionLogprobs, positionLogprobs } from './logprobs.js';
import { type SamplingOptions, checkSampling, sampleToken } from './sampling.js';
import type { JsonConstraint, JsonGrammar, TokenMask, TokenVocabulary } from './token_mask.js';

export interface SequenceOptions extends SamplingOptions {
  /** The most tokens to generate (default 32). */
  maxNewTokens?: number;
  /** Token ids that end generation (kept in the output, as transformers does). */
  eosIds?: readonly number[];
  /** Texts that end generation once the generated text contains one (needs `decode`); the text is cut before it. */
  stopStrings?: readonly string[];
  /** The tokenizer's decode, for stop strings and `text`. */
  decode?: (ids: number[]) => string;
  /** The sampling Rng's seed (default 0). */
  seed?: number;
  /** The LoRA adapter that decodes this sequence (`serve --lora-modules NAME=DIR`); none: the base alone. */
  adapter?: string;
  /** Tokens generated before an end id may be drawn (vLLM's min_tokens; default 0); stop strings still apply. */
  minNewTokens?: number;
  /**
   * Record each chosen token's log-probability under the model (logprobs.ts) with this many most
   * likely tokens beside it (0: the chosen token's alone; undefined: nothing recorded).
   */
  logprobs?: number;
  /** Record each prompt token's log-probability given the tokens before it, with this many most likely (the prefill computes them; undefined: none). */
  promptLogprobs?: number;
  /**
   * Constrained decoding (token_mask.ts): every token chosen keeps the text a prefix of a value of
   * the grammar, an end id comes only once the value is whole, and the sequence stops once nothing
   * may follow it. Each sequence walks the grammar on its own.
   */
  constraint?: { grammar: JsonGrammar; vocab: TokenVocabulary };
}

export type StopReason = 'length' | 'eos' | 'stop' | 'callback';

export interface GenerateResult {
  /** The generated ids (the prompt not included). */
  ids: number[];
  /** Their decoded text, cut before a stop string (when `decode` was given). */
  text?: string;
  stopReason: StopReason;
  /** With options.logprobs: each generated token's log-probability (logprobs.ts). */
  logprobs?: PositionLogprobs[];
  /** With options.promptLogprobs: the prompt's tokens after the first, each given those before it. */
  promptLogprobs?: PositionLogprobs[];
}

/** The first stop string's index in `text`, or -1. */
export function stopAt(text: string, stops: readonly string[]): number {
  const at = stops.map((s) => text.indexOf(s)).filter((i) => i >= 0);
  return at.length ? Math.min(...at) : -1;
}

export class Sequence {
  /** The generated ids so far. */
  readonly ids: number[] = [];
  /** With options.logprobs: each generated token's log-probability, in order. */
  readonly logprobs: PositionLogprobs[] = [];
  /** With options.promptLogprobs, once prefilled: the prompt's tokens after the first, each given those before it. */
  promptLogprobs: PositionLogprobs[] | null = null;
  readonly maxNewTokens: number;
  private readonly seen: number[];
  private readonly rng: Rng;
  private readonly eos: Set<number>;
  /** With options.constraint: where this sequence's text stands in the grammar. */
  private readonly constraint: JsonConstraint | null;
  /** With options.constraint: the masked logits, rewritten each step. */
  private maskedRow: Float32Array | null = null;

  /** Checks the options and the prompt (errors name the option). */
  constructor(readonly promptIds: readonly number[], readonly options: SequenceOptions = {}) {
    checkSampling(options);
    const max = options.maxNewTokens ?? 32;
    if (!Number.isInteger(max) || max < 0) throw new Error(`generate: maxNewTokens must be an integer >= 0, got ${max}`);
    const min = options.minNewTokens ?? 0;
    if (!Number.isInteger(min) || min < 0) throw new Error(`generate: minNewTokens must be an integer >= 0, got ${min}`);
    if (promptIds.length === 0) throw new Error('generate: the prompt needs at least one token id');
    if (options.stopStrings?.length && !options.decode) throw new Error('generate: stopStrings need the tokenizer\'s decode');
    for (const key of ['logprobs', 'promptLogprobs'] as const) {
      const k = options[key];
      if (k !== undefined && !(Number.isInteger(k) && k >= 0)) throw new Error(`generate: ${key} must be an integer >= 0, got ${k}`);
    }
    this.maxNewTokens = max;
    this.seen = [...promptIds];
    this.rng = new Rng(options.seed ?? 0);
    this.eos = new Set(options.eosIds ?? []);
    this.constraint = options.constraint ? options.constraint.grammar.start(options.constraint.vocab) : null;
  }

  /** Picks the next token from its logits and records it; before minNewTokens no end id can be drawn. */
  choose(logits: Float32Array): number {
    const mask = this.constraint?.allowed() ?? null;
    const row = mask ? this.constrained(logits, mask) : this.tooShort() && this.eos.size > 0 ? this.withoutEnds(logits) : logits;
    const token = sampleToken(row, this.seen, this.options, this.rng, this.ids);
    if (this.options.logprobs !== undefined) this.logprobs.push(positionLogprobs(logits, token, this.options.logprobs));
    return this.accept(token);
  }

  /**
   * Records the prompt's log-probabilities from the prefill's logits at every prompt position
   * (`at(t)`: position t's row, which predicts token t + 1); the first token has none.
   */
  scorePrompt(at: (t: number) => Float32Array): void {
    const k = this.options.promptLogprobs ?? 0;
    this.promptLogprobs = this.promptIds.slice(1).map((id, t) => positionLogprobs(at(t), id, k));
  }

  /**
   * A copy of the logits in which only the tokens the constraint allows can be drawn, and the end
   * ids once the value is whole (and min_tokens reached). Should no token fit (a vocabulary without
   * a character the grammar needs), the end ids are allowed, so the sequence never hangs.
   */
  private constrained(logits: Float32Array, mask: TokenMask): Float32Array {
    const ends = mask.count === 0 || (this.constraint!.complete && !this.tooShort());
    if (mask.count === 0 && this.eos.size === 0) return logits;
    // One buffer per sequence, reused every step (sampleToken copies what it changes): a vocabulary's
    // row of floats a token is garbage that, across a batch, calls the collector in often.
    if (this.maskedRow?.length !== logits.length) this.maskedRow = new Float32Array(logits.length);
    const row = this.maskedRow;
    if (mask.except) {
      // Most tokens allowed: the logits as they are, the few banned ones (and ids beyond the tokenizer) cut.
      row.set(logits);
      for (let i = 0; i < mask.ids.length; i++) row[mask.ids[i]] = -Infinity;
      row.fill(-Infinity, this.options.constraint!.vocab.size);
    } else {
      row.fill(-Infinity);
      for (let i = 0; i < mask.ids.length; i++) row[mask.ids[i]] = logits[mask.ids[i]];
    }
    for (const id of this.eos) if (id < row.length) row[id] = ends ? logits[id] : -Infinity;
    return row;
  }

  /** A copy of the logits in which no end id can be drawn (the caller's row is left as it was). */
  private withoutEnds(logits: Float32Array): Float32Array {
    const row = Float32Array.from(logits);
    for (const id of this.eos) if (id < row.length) row[id] = -Infinity;
    return row;
  }

  private tooShort(): boolean {
    return this.ids.length < (this.options.minNewTokens ?? 0);
  }

  /** Records a token chosen elsewhere (a pipeline's last stage samples with this sequence's twin). */
  accept(token: number): number {
    this.ids.push(token);
    this.seen.push(token);
    this.constraint?.advance(token);
    return token;
  }

  /** Why generation ends after the tokens so far, or null to go on. */
  stopped(): StopReason | null {
    if (this.ids.length > 0 && this.eos.has(this.ids[this.ids.length - 1])) return 'eos';
    // A constrained value that nothing may follow has ended the reply (no end id needed).
    if (this.constraint?.done) return 'stop';
    const stops = this.options.stopStrings;
    if (stops?.length && stopAt(this.options.decode!(this.ids), stops) >= 0) return 'stop';
    if (this.ids.length >= this.maxNewTokens) return 'length';
    return null;
  }

  /** The result, its text cut before a stop string. */
  result(stopReason: StopReason): GenerateResult {
    const scores = {
      ...(this.options.logprobs !== undefined ? { logprobs: this.logprobs } : {}),
      ...(this.promptLogprobs ? { promptLogprobs: this.promptLogprobs } : {}),
    };
    if (!this.options.decode) return { ids: this.ids, stopReason, ...scores };
    const text = this.options.decode(this.ids);
    const cut = stopAt(text, this.options.stopStrings ?? []);
    return { ids: this.ids, text: cut >= 0 ? text.slice(0, cut) : text, stopReason, ...scores };
  }
}
