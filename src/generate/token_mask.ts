/**
 * The token-level mask of constrained decoding: which vocabulary tokens may come next, given where
 * the JSON automaton (json_automaton.ts) stands. Every token's text is decoded once per tokenizer
 * and the texts are laid in a trie, so a mask walks the automaton down the trie and a branch whose
 * prefix cannot go on is never entered (xgrammar's and llguidance's idea): inside a string nearly
 * every token is viable, after `{` only those starting a key or whitespace. Masks are cached per
 * automaton state key for each grammar and vocabulary, so a state seen before (every step inside a
 * string, every request of one schema after the first) costs a map lookup.
 *
 * Tokens whose text is empty or holds U+FFFD (a piece of a multi-byte character, decoded alone) are
 * never allowed: the automaton works on characters, so non-ASCII text comes from whole-character tokens.
 */
import { type JsonState, advance, advanceText, startState } from './json_automaton.js';
import type { JsonNode } from './json_schema_grammar.js';

interface TrieNode {
  children: Map<string, TrieNode>;
  /** Tokens whose text ends here. */
  ids: number[];
}

/** A tokenizer's token texts and their trie, built once and shared by every constrained request. */
export class TokenVocabulary {
  readonly texts: readonly (string | null)[];
  readonly root: TrieNode = { children: new Map(), ids: [] };

  /** `size`: the ids a model's logits have (those the tokenizer cannot decode are never allowed); `excluded`: special tokens (end ids) kept out of the text. */
  constructor(readonly size: number, decode: (ids: number[]) => string, tokenizerSize: number, excluded: Iterable<number> = []) {
    const skip = new Set(excluded);
    const texts: (string | null)[] = [];
    for (let id = 0; id < size; id++) {
      const text = id < tokenizerSize && !skip.has(id) ? decode([id]) : '';
      texts.push(text.length > 0 && !text.includes('\uFFFD') ? text : null);
    }
    this.texts = texts;
    for (let id = 0; id < size; id++) if (texts[id] !== null) this.insert(texts[id]!, id);
  }

  private insert(text: string, id: number): void {
    let node = this.root;
    for (const c of text) {
      let next = node.children.get(c);
      if (!next) node.children.set(c, (next = { children: new Map(), ids: [] }));
      node = next;
    }
    node.ids.push(id);
  }
}

/** Cached masks per grammar and vocabulary at most (a grammar's states are few; a bound keeps a pathological one in check). */
const MAX_CACHED_MASKS = 20_000;

/** A compiled grammar over JSON and the masks it has needed, per vocabulary. */
export class JsonGrammar {
  private readonly masks = new WeakMap<TokenVocabulary, Map<string, Int32Array>>();

  constructor(readonly root: JsonNode) {}

  /** The token ids whose whole text can follow `state` (not the end ids: the constraint adds those). */
  mask(vocab: TokenVocabulary, state: JsonState): Int32Array {
    let cache = this.masks.get(vocab);
    if (!cache) this.masks.set(vocab, (cache = new Map()));
    const hit = cache.get(state.key);
    if (hit) return hit;
    const ids: number[] = [];
    walk(vocab.root, state, ids);
    const mask = Int32Array.from(ids);
    if (cache.size >= MAX_CACHED_MASKS) cache.clear();
    cache.set(state.key, mask);
    return mask;
  }

  /** A new constraint at the start of a value (one per generated sequence). */
  start(vocab: TokenVocabulary): JsonConstraint {
    return new JsonConstraint(this, vocab, startState(this.root));
  }
}

/** Collects the ids of every token under `node` whose text, from `state`, the automaton takes. */
function walk(node: TrieNode, state: JsonState, ids: number[]): void {
  for (const [c, child] of node.children) {
    const next = advance(state, c);
    if (next === null) continue;
    for (const id of child.ids) ids.push(id);
    if (child.children.size > 0) walk(child, next, ids);
  }
}

/**
 * One sequence's constraint: where its text stands in the grammar, which tokens may come next, and
 * whether its value is whole (an end id allowed) or over (nothing may follow).
 */
export class JsonConstraint {
  constructor(private readonly grammar: JsonGrammar, private readonly vocab: TokenVocabulary, private state: JsonState) {}

  /** The tokens that may come next (the end ids not among them: see `complete`). */
  allowed(): Int32Array {
    return this.state.done ? new Int32Array(0) : this.grammar.mask(this.vocab, this.state);
  }

  /** The text so far is a whole value: an end id may come next. */
  get complete(): boolean {
    return this.state.complete;
  }

  /** Nothing may follow the text so far. */
  get done(): boolean {
    return this.state.done;
  }

  /** Moves past token `id` (an end id or a token the mask did not allow leaves the state as it was). */
  advance(id: number): void {
    const text = this.vocab.texts[id];
    if (text === null || text === undefined) return;
    this.state = advanceText(this.state, text) ?? this.state;
  }
}
