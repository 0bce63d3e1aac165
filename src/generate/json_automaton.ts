/**
 * A pushdown automaton over JSON text that knows, character by character, whether the text so far
 * can still become a value of a grammar (json_schema_grammar.ts). A state is an immutable stack of
 * frames (one per open value: object, array, string, number, literal), so stepping a character
 * never disturbs the state it came from: the token mask walks every vocabulary token from one state.
 * Each state has a `key` naming everything that decides what may follow, so masks can be cached
 * per key (token_mask.ts).
 *
 * Whitespace is allowed where JSON allows it, but at most MAX_WS characters in a row, so a model
 * keeps natural spacing (`{"a": 1}`, pretty-printing) yet cannot loop forever on spaces; numbers
 * are bounded in digits for the same reason.
 */
import { type JsonNode, firstChars } from './json_schema_grammar.js';

/** Whitespace characters allowed in a row between tokens of JSON. */
export const MAX_WS = 12;
/** Digits allowed in a number's integer part, fraction and exponent. */
const MAX_INT_DIGITS = 16;
const MAX_FRAC_DIGITS = 16;
const MAX_EXP_DIGITS = 3;

const ANY: JsonNode = { kind: 'any', id: -1 };
const ANY_OBJECT: JsonNode = { kind: 'object', id: -2, props: [], free: ANY };
const ANY_ARRAY: JsonNode = { kind: 'array', id: -3, items: ANY, min: 0, max: Infinity };
const ANY_STRING: JsonNode = { kind: 'string', id: -4 };
const ANY_NUMBER: JsonNode = { kind: 'number', id: -5, integer: false };
const ANY_LITERAL: JsonNode = { kind: 'literal', id: -6, texts: ['true', 'false', 'null'] };
const ANY_OPTIONS = [ANY_OBJECT, ANY_ARRAY, ANY_STRING, ANY_NUMBER, ANY_LITERAL];

const isWs = (c: string): boolean => c === ' ' || c === '\n' || c === '\t' || c === '\r';
const isDigit = (c: string): boolean => c >= '0' && c <= '9';

/**
 * What a frame does with a character: stays (a new frame in its place), opens children on top of
 * itself (the character already consumed by the last: a tool call's switch opens its literal), or ends (popped, with a result its parent takes).
 */
export type Step = { frame: Frame; children?: readonly Frame[] } | Ended | null;
export type Ended = { done: string };

export interface Frame {
  readonly key: string;
  step(c: string): Step;
  /** Whether the value may end here without a closing character of its own (a number, a literal prefix of another). */
  readonly canEnd: boolean;
  /** Its child's value ended (with `result`: a literal's text): the frame that follows, or its own end. */
  resume(result: string): Frame | Ended;
}

/** A frame for a value of `node` starting with `c` (null: it cannot). */
function open(node: JsonNode, c: string): Step {
  switch (node.kind) {
    case 'any': {
      const option = ANY_OPTIONS.find((o) => firstChars(o).includes(c));
      return option ? open(option, c) : null;
    }
    case 'union': {
      const option = node.options.find((o) => firstChars(o).includes(c));
      return option ? open(option, c) : null;
    }
    case 'object': return c === '{' ? { frame: new ObjectFrame(node, 'open', 0, 0) } : null;
    case 'array': return c === '[' ? { frame: new ArrayFrame(node, 'open', 0, 0) } : null;
    case 'string': return c === '"' ? { frame: StringFrame.START } : null;
    case 'number': return new NumberFrame(node.integer, 'start', 0).step(c);
    case 'literal': return new LiteralFrame(node.texts, 0).step(c);
    case 'seq': return new SeqFrame(node, 0).step(c);
    case 'switch': return new SwitchFrame(node, -1).step(c);
  }
}

/** A value of `node` starting with `c`, as the child of `self` (or, whole at once, `self` resumed), or null when `c` cannot start it. */
function openChild(node: JsonNode, c: string, self: Frame): Step {
  const child = open(node, c);
  if (child === null) return null;
  if ('done' in child) return resumed(self.resume(child.done));
  return { frame: self, children: [child.frame, ...(child.children ?? [])] };
}

/** A resume's outcome as a step. */
function resumed(r: Frame | Ended): Step {
  return 'done' in r ? r : { frame: r };
}

/** Parts one after another: `at` is the part under way (its frame on top) or, between parts, the next to start. */
class SeqFrame implements Frame {
  readonly key: string;
  readonly canEnd = false;
  constructor(readonly node: Extract<JsonNode, { kind: 'seq' }>, readonly at: number) {
    this.key = `q${node.id},${at}`;
  }

  step(c: string): Step {
    return openChild(this.node.parts[this.at], c, new SeqFrame(this.node, this.at));
  }

  resume(): Frame | Ended {
    return this.at + 1 >= this.node.parts.length ? { done: '' } : new SeqFrame(this.node, this.at + 1);
  }
}

/** A case's text (a literal child), then that case's continuation: `chosen` is -1 while the text is matched. */
class SwitchFrame implements Frame {
  readonly key: string;
  readonly canEnd = false;
  private readonly texts: JsonNode;
  constructor(readonly node: Extract<JsonNode, { kind: 'switch' }>, readonly chosen: number) {
    this.key = `w${node.id},${chosen}`;
    this.texts = { kind: 'literal', id: -7, texts: node.cases.map((x) => x.text) };
  }

  step(c: string): Step {
    return openChild(this.chosen < 0 ? this.texts : this.node.cases[this.chosen].then, c, this);
  }

  resume(result: string): Frame | Ended {
    if (this.chosen >= 0) return { done: '' };
    return new SwitchFrame(this.node, this.node.cases.findIndex((x) => x.text === result));
  }
}

/** A value of `node` about to start, after up to MAX_WS whitespace characters. */
class ValueFrame implements Frame {
  readonly key: string;
  readonly canEnd = false;
  constructor(readonly node: JsonNode, readonly ws: number) {
    this.key = `v${node.id},${ws}`;
  }

  step(c: string): Step {
    if (isWs(c)) return this.ws < MAX_WS ? { frame: new ValueFrame(this.node, this.ws + 1) } : null;
    return open(this.node, c);
  }

  resume(): Frame {
    throw new Error('json automaton: a value frame has no child');
  }
}

class StringFrame implements Frame {
  static readonly START = new StringFrame(0);
  readonly key: string;
  readonly canEnd = false;
  /** `escape`: 0 none, 1 after a backslash, 2..5 hex digits of \u still to come + 1. */
  constructor(readonly escape: number) {
    this.key = `s${escape}`;
  }

  step(c: string): Step {
    if (this.escape === 1) {
      if (c === 'u') return { frame: new StringFrame(5) };
      return '"\\/bfnrt'.includes(c) ? { frame: StringFrame.START } : null;
    }
    if (this.escape > 1) return /[0-9a-fA-F]/.test(c) ? { frame: this.escape === 2 ? StringFrame.START : new StringFrame(this.escape - 1) } : null;
    if (c === '"') return { done: '' };
    if (c === '\\') return { frame: new StringFrame(1) };
    // JSON forbids raw control characters inside strings.
    return c.charCodeAt(0) < 0x20 ? null : { frame: this };
  }

  resume(): Frame {
    throw new Error('json automaton: a string frame has no child');
  }
}

type NumberPhase = 'start' | 'sign' | 'zero' | 'int' | 'dot' | 'frac' | 'e' | 'esign' | 'exp';

/** -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? (integers: the first part alone). */
class NumberFrame implements Frame {
  readonly key: string;
  readonly canEnd: boolean;
  constructor(readonly integer: boolean, readonly phase: NumberPhase, readonly digits: number) {
    this.key = `n${integer ? 'i' : 'f'}${phase}${digits}`;
    this.canEnd = phase === 'zero' || phase === 'int' || phase === 'frac' || phase === 'exp';
  }

  private to(phase: NumberPhase, digits = 0): Step {
    return { frame: new NumberFrame(this.integer, phase, digits) };
  }

  step(c: string): Step {
    const p = this.phase;
    if (p === 'start' && c === '-') return this.to('sign');
    if ((p === 'start' || p === 'sign') && isDigit(c)) return c === '0' ? this.to('zero') : this.to('int', 1);
    if (p === 'int' && isDigit(c)) return this.digits < MAX_INT_DIGITS ? this.to('int', this.digits + 1) : null;
    if (this.integer) return null;
    if ((p === 'zero' || p === 'int') && c === '.') return this.to('dot');
    if ((p === 'dot' || p === 'frac') && isDigit(c)) return this.digits < MAX_FRAC_DIGITS ? this.to('frac', this.digits + 1) : null;
    if ((p === 'zero' || p === 'int' || p === 'frac') && (c === 'e' || c === 'E')) return this.to('e');
    if (p === 'e' && (c === '+' || c === '-')) return this.to('esign');
    if ((p === 'e' || p === 'esign' || p === 'exp') && isDigit(c)) return this.digits < MAX_EXP_DIGITS ? this.to('exp', this.digits + 1) : null;
    return null;
  }

  resume(): Frame {
    throw new Error('json automaton: a number frame has no child');
  }
}

/** One of `texts`, `at` characters matched; its result is the text matched. */
class LiteralFrame implements Frame {
  readonly key: string;
  readonly canEnd: boolean;
  constructor(readonly texts: readonly string[], readonly at: number) {
    // The texts left are those of the parent's set that start with the characters matched: the
    // parent's key names the set, so the matched prefix names this frame.
    this.key = `l${at}:${texts[0].slice(0, at)}`;
    this.canEnd = at > 0 && texts.some((t) => t.length === at);
  }

  step(c: string): Step {
    const next = this.texts.filter((t) => t[this.at] === c);
    if (next.length === 0) return null;
    // Ended when the one text left is whole (a text that others extend ends by the parent's next character: canEnd).
    if (next.length === 1 && next[0].length === this.at + 1) return { done: next[0] };
    return { frame: new LiteralFrame(next, this.at + 1) };
  }

  /** The text it ends on when the next character belongs to the parent. */
  get result(): string {
    return this.texts.find((t) => t.length === this.at)!;
  }

  resume(): Frame {
    throw new Error('json automaton: a literal frame has no child');
  }
}

type ObjectPhase = 'open' | 'comma' | 'key' | 'colon' | 'value' | 'after';

/**
 * An object: properties in schema order, each optional one skippable, `next` the first not yet
 * passed; `}` once no required one is left. Free objects (no properties) take any string key.
 */
class ObjectFrame implements Frame {
  readonly key: string;
  readonly canEnd = false;
  constructor(readonly node: Extract<JsonNode, { kind: 'object' }>, readonly phase: ObjectPhase, readonly next: number, readonly ws: number, readonly current = -1) {
    this.key = `o${node.id},${phase},${next},${ws},${current}`;
  }

  private to(phase: ObjectPhase, next = this.next, ws = 0, current = this.current): ObjectFrame {
    return new ObjectFrame(this.node, phase, next, ws, current);
  }

  /** The properties whose key may come next: up to and including the first required one left. */
  private candidates(): readonly { text: string; index: number }[] {
    const props = this.node.props;
    const out: { text: string; index: number }[] = [];
    for (let i = this.next; i < props.length; i++) {
      out.push({ text: props[i].text, index: i });
      if (props[i].required) break;
    }
    return out;
  }

  private closable(): boolean {
    return this.node.props.slice(this.next).every((p) => !p.required);
  }

  private keyStarts(): boolean {
    return this.node.free !== null || this.candidates().length > 0;
  }

  step(c: string): Step {
    const p = this.phase;
    if (isWs(c) && p !== 'key' && p !== 'value') return this.ws < MAX_WS ? { frame: this.to(p, this.next, this.ws + 1) } : null;
    if ((p === 'open' || p === 'after') && c === '}' && this.closable()) return { done: '' };
    if ((p === 'open' || p === 'comma') && c === '"' && this.keyStarts()) {
      if (this.node.free !== null || this.node.props.length === 0) return { frame: this.to('key'), children: [StringFrame.START] };
      return { frame: this.to('key'), children: [new LiteralFrame(this.candidates().map((x) => x.text), 1)] };
    }
    if (p === 'after' && c === ',' && this.keyStarts()) return { frame: this.to('comma') };
    if (p === 'colon' && c === ':') return { frame: this.to('value'), children: [new ValueFrame(this.valueNode(), 0)] };
    return null;
  }

  private valueNode(): JsonNode {
    return this.current >= 0 ? this.node.props[this.current].value : this.node.free ?? ANY;
  }

  resume(result: string): Frame {
    if (this.phase === 'value') return this.to('after');
    // A key: a literal's text names the property, which moves `next` past it.
    if (this.node.props.length === 0) return this.to('colon', this.next, 0, -1);
    const index = this.candidates().find((x) => x.text === result)!.index;
    return this.to('colon', index + 1, 0, index);
  }
}

type ArrayPhase = 'open' | 'comma' | 'item' | 'after';

class ArrayFrame implements Frame {
  readonly key: string;
  readonly canEnd = false;
  constructor(readonly node: Extract<JsonNode, { kind: 'array' }>, readonly phase: ArrayPhase, readonly count: number, readonly ws: number) {
    // A token may close an item and go on in this array, so the count matters wherever a bound is
    // near: exactly under maxItems, up to minItems otherwise (beyond it every count behaves alike).
    this.key = `a${node.id},${phase},${node.max < Infinity ? count : Math.min(count, node.min)},${ws}`;
  }

  step(c: string): Step {
    const p = this.phase;
    if (isWs(c)) return this.ws < MAX_WS ? { frame: new ArrayFrame(this.node, p, this.count, this.ws + 1) } : null;
    if ((p === 'open' || p === 'after') && c === ']' && this.count >= this.node.min) return { done: '' };
    if (p === 'after' && c === ',' && this.count < this.node.max) return { frame: new ArrayFrame(this.node, 'comma', this.count, 0) };
    // The item may be whole after one character (a one-character literal): openChild resumes at once.
    if ((p === 'open' && this.node.max > 0) || p === 'comma') return openChild(this.node.items, c, new ArrayFrame(this.node, 'item', this.count, 0));
    return null;
  }

  resume(): Frame {
    return new ArrayFrame(this.node, 'after', this.count + 1, 0);
  }
}

/** A state: the stack of open values (top first), or DONE once the top-level value has ended. */
export class JsonState {
  constructor(readonly frame: Frame | null, readonly parent: JsonState | null, readonly key: string) {}

  /** The text is one whole value and nothing may follow. */
  get done(): boolean {
    return this.frame === null;
  }

  /** Inside a string, no escape begun: any character but `"`, `\\` and control characters keeps the state as it is. */
  get inStringContent(): boolean {
    return this.frame === StringFrame.START;
  }

  /** The text so far is a whole value (it may also go on: a number's next digit). */
  get complete(): boolean {
    let s: JsonState | null = this;
    while (s && s.frame) {
      if (!s.frame.canEnd) return false;
      s = s.parent;
    }
    return true;
  }
}

const DONE = new JsonState(null, null, 'done');

function push(frame: Frame, parent: JsonState): JsonState {
  return new JsonState(frame, parent, `${parent.key}|${frame.key}`);
}

/** The state where a value of `root` starts (whitespace first allowed). */
export function startState(root: JsonNode): JsonState {
  return push(new ValueFrame(root, 0), DONE);
}

/** `state` after the frame on top ended with `result` (its parent may end with it: a sequence's last part). */
function popped(state: JsonState, result: string): JsonState {
  const parent = state.parent!;
  if (parent === DONE) return DONE;
  const r = parent.frame!.resume(result);
  return 'done' in r ? popped(parent, r.done) : push(r, parent.parent!);
}

/** The state after `c`, or null when no value of the grammar can go on so. */
export function advance(state: JsonState, c: string): JsonState | null {
  let s = state;
  for (;;) {
    const frame = s.frame;
    if (frame === null) return null;
    const r = frame.step(c);
    if (r !== null) {
      if ('done' in r) return popped(s, r.done);
      let moved = push(r.frame, s.parent!);
      for (const child of r.children ?? []) moved = push(child, moved);
      return moved;
    }
    // A number or a literal that may end here ends, and the character is its parent's.
    if (!frame.canEnd) return null;
    s = popped(s, frame instanceof LiteralFrame ? frame.result : '');
  }
}

/** The state after all of `text` (null: it cannot be part of a value of the grammar). */
export function advanceText(state: JsonState, text: string): JsonState | null {
  let s: JsonState | null = state;
  for (const c of text) {
    s = advance(s, c);
    if (s === null) return null;
  }
  return s;
}
