/**
 * The token-level mask of constrained decoding: which vocabulary tokens may come next, given where
 * the JSON automaton (json_automaton.ts) stands. Every token's text is decoded once per tokenizer
 * and the texts are laid in a trie, so a mask walks the automaton down the trie and a branch whose
 * prefix cannot go on is never entered (xgrammar's and llguidance's idea): inside a string nearly
 * every token is viable, after `{` only those starting a key or whitespace. Masks are cached per
 * automaton state key for each grammar and vocabulary, so a state seen before (every step inside a
 * string, every request of one schema after the first) costs a map lookup.
 *
 * Inside a string most tokens are plain text that leaves the state as it is: those are listed once
 * per vocabulary, and only the others (holding `"`, `\` or a control character) are walked there.
 * A mask that allows most of the vocabulary is kept as the ids it bans.
 *
 * Tokens whose text is empty or holds U+FFFD (a piece of a multi-byte character, decoded alone) are
 * never allowed: the automaton works on characters, so non-ASCII text comes from whole-character tokens.
 */
import { type JsonState, advance, advanceText, startState } from './json_automaton.js';
import type { JsonNode } from './json_schema_grammar.js';
import { TokenTrie } from './token_trie.js';

/** A tokenizer's token texts and their tries, built once and shared by every constrained request. */
export class TokenVocabulary {
  readonly texts: readonly (string | null)[];
  /** Every token's text. */
  readonly root: TokenTrie;
  /** The tokens that are plain string content (no `"`, `\`, control character): allowed anywhere inside a string. */
  readonly plain: Int32Array;
  /** The trie of the other tokens. */
  readonly special: TokenTrie;

  /** `size`: the ids a model's logits have (those the tokenizer cannot decode are never allowed); `excluded`: special tokens (end ids) kept out of the text. */
  constructor(readonly size: number, decode: (ids: number[]) => string, tokenizerSize: number, excluded: Iterable<number> = []) {
    const skip = new Set(excluded);
    const texts: (string | null)[] = [];
    for (let id = 0; id < size; id++) {
      const text = id < tokenizerSize && !skip.has(id) ? decode([id]) : '';
      texts.push(text.length > 0 && !text.includes('\uFFFD') ? text : null);
    }
    this.texts = texts;
    const plain: number[] = [];
    const all: [string, number][] = [];
    const special: [string, number][] = [];
    for (let id = 0; id < size; id++) {
      const text = texts[id];
      if (text === null) continue;
      all.push([text, id]);
      // eslint-disable-next-line no-control-regex
      if (/["\\\u0000-\u001f]/.test(text)) special.push([text, id]);
      else plain.push(id);
    }
    this.root = new TokenTrie(all);
    this.special = new TokenTrie(special);
    this.plain = Int32Array.from(plain);
  }
}

/**
 * The tokens that may come next: `ids` themselves, or (`except`) every id below the vocabulary's
 * size but `ids` (a mask inside a string allows nearly all of them: its complement is short).
 */
export interface TokenMask {
  readonly ids: Int32Array;
  readonly except: boolean;
  /** How many tokens it allows. */
  readonly count: number;
}

/** `allowed` as a TokenMask over a vocabulary of `size` ids, in whichever form is shorter. */
function maskOf(allowed: number[], size: number): TokenMask {
  if (allowed.length <= size / 2) return { ids: Int32Array.from(allowed), except: false, count: allowed.length };
  const on = new Uint8Array(size);
  for (const id of allowed) on[id] = 1;
  const banned: number[] = [];
  for (let id = 0; id < size; id++) if (!on[id]) banned.push(id);
  return { ids: Int32Array.from(banned), except: true, count: allowed.length };
}

/** Cached masks per grammar and vocabulary at most (a grammar's states are few; a bound keeps a pathological one in check). */
const MAX_CACHED_MASKS = 20_000;

/**
 * Where a lazily constrained reply's grammar begins (a tool call under tool_choice auto): the
 * reply is free until its text holds `text` (at its start only, after whitespace, when `atStart`),
 * then constrained from where `text` begins.
 */
export interface GrammarTrigger {
  text: string;
  atStart: boolean;
}

/** A compiled grammar over JSON and the masks it has needed, per vocabulary. */
export class JsonGrammar {
  private readonly masks = new WeakMap<TokenVocabulary, Map<string, TokenMask>>();

  /** `trigger`: the grammar applies from where the reply first holds it (null: from the first token). */
  constructor(readonly root: JsonNode, readonly trigger: GrammarTrigger | null = null) {}

  /** The token ids whose whole text can follow `state` (not the end ids: the constraint adds those). */
  mask(vocab: TokenVocabulary, state: JsonState): TokenMask {
    let cache = this.masks.get(vocab);
    if (!cache) this.masks.set(vocab, (cache = new Map()));
    const hit = cache.get(state.key);
    if (hit) return hit;
    const ids: number[] = [];
    if (state.inStringContent) {
      for (const id of vocab.plain) ids.push(id);
      walk(vocab.special, 0, state, ids);
    } else walk(vocab.root, 0, state, ids);
    const mask = maskOf(ids, vocab.size);
    if (cache.size >= MAX_CACHED_MASKS) cache.clear();
    cache.set(state.key, mask);
    return mask;
  }

  /** A new constraint at the start of a value (one per generated sequence). */
  start(vocab: TokenVocabulary): JsonConstraint {
    return new JsonConstraint(this, vocab, this.trigger ? null : startState(this.root));
  }
}

/** Collects the ids of every token under node `n` of `trie` whose text, from `state`, the automaton takes. */
function walk(trie: TokenTrie, n: number, state: JsonState, ids: number[]): void {
  for (let child = trie.firstChild[n]; child >= 0; child = trie.nextSibling[child]) {
    const next = advance(state, String.fromCodePoint(trie.code[child]));
    if (next === null) continue;
    for (let k = trie.idsStart[child]; k < trie.idsStart[child + 1]; k++) ids.push(trie.ids[k]);
    if (trie.firstChild[child] >= 0) walk(trie, child, next, ids);
  }
}

const NOTHING: TokenMask = { ids: new Int32Array(0), except: false, count: 0 };

/**
 * One sequence's constraint: where its text stands in the grammar, which tokens may come next, and
 * whether its value is whole (an end id allowed) or over (nothing may follow).
 */
export class JsonConstraint {
  /** Before a trigger is met: the reply's text so far (null once the grammar applies, or it never will). */
  private free: string | null;
  private gaveUp = false;

  /** `state` null: the grammar waits for its trigger. */
  constructor(private readonly grammar: JsonGrammar, private readonly vocab: TokenVocabulary, private state: JsonState | null) {
    this.free = state === null ? '' : null;
  }

  /** The tokens that may come next (the end ids not among them: see `complete`); null: any (no grammar applies yet). */
  allowed(): TokenMask | null {
    if (this.state === null) return null;
    return this.state.done ? NOTHING : this.grammar.mask(this.vocab, this.state);
  }

  /** The text so far is a whole value, or free text: an end id may come next. */
  get complete(): boolean {
    return this.state === null || this.state.complete;
  }

  /** Nothing may follow the text so far. */
  get done(): boolean {
    return this.state !== null && this.state.done;
  }

  /** Moves past token `id` (an end id or a token the mask did not allow leaves the state as it was). */
  advance(id: number): void {
    const text = this.vocab.texts[id];
    if (text === null || text === undefined) return;
    if (this.state === null) return this.watch(text);
    this.state = advanceText(this.state, text) ?? this.state;
  }

  /** Free text so far: once it holds the trigger, the grammar applies from the trigger on. */
  private watch(text: string): void {
    const trigger = this.grammar.trigger!;
    if (this.gaveUp || this.free === null) return;
    this.free += text;
    const at = trigger.atStart ? (this.free.trimStart().startsWith(trigger.text) ? this.free.length - this.free.trimStart().length : -1) : this.free.indexOf(trigger.text);
    if (trigger.atStart && at < 0 && this.free.trim().length >= trigger.text.length) this.gaveUp = true;
    if (at < 0) return;
    // A token past the trigger that the grammar refuses leaves the reply free (it was the model's choice, before any mask).
    this.state = advanceText(startState(this.grammar.root), this.free.slice(at));
    this.free = null;
  }
}
