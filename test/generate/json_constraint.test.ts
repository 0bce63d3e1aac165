/**
 * Constrained decoding: the schema compiler (what it enforces, what it refuses by keyword), the JSON
 * automaton on hand-written texts, the trie-walked token mask against a brute-force one, and random
 * token sequences drawn under the mask, which always end as JSON that fits the schema.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_WS, advanceText, startState } from '../../src/generate/json_automaton.js';
import { SchemaError, anyJson, compileSchema } from '../../src/generate/json_schema_grammar.js';
import { Sequence } from '../../src/generate/sequence.js';
import { JsonGrammar, type TokenMask, TokenVocabulary } from '../../src/generate/token_mask.js';
import { Rng } from '../../src/util/rng.js';
import { JSON_TEXTS, jsonTokenizer, misfit } from './json_fixtures.js';

const EOS = 127;
const vocab = new TokenVocabulary(128, jsonTokenizer.decode, jsonTokenizer.vocabSize, [EOS]);
/** The ids a mask allows, in order. */
const idsOf = (m: TokenMask): number[] => (m.except ? [...Array(vocab.size).keys()].filter((id) => !m.ids.includes(id)) : [...m.ids].sort((a, b) => a - b));
const grammarOf = (schema: object, strict = true): JsonGrammar => new JsonGrammar(compileSchema(schema, strict).root);

const PERSON = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    age: { type: 'integer' },
    height: { type: 'number' },
    student: { type: 'boolean' },
    role: { enum: ['admin', 'user', 7, null] },
    tags: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 3 },
    address: { type: 'object', properties: { city: { type: 'string' }, zip: { type: ['string', 'null'] } }, required: ['city'], additionalProperties: false },
    nick: { anyOf: [{ type: 'string' }, { type: 'integer' }] },
    kind: { const: 'person' },
  },
  required: ['name', 'age', 'tags', 'address', 'kind'],
  additionalProperties: false,
};
const SCHEMAS: Record<string, object> = {
  person: PERSON,
  refs: { $defs: { point: { type: 'object', properties: { x: { type: 'number' }, y: { type: 'number' } }, required: ['x', 'y'] } }, type: 'array', items: { $ref: '#/$defs/point' }, maxItems: 4 },
  number: { type: 'number' },
  enumNumbers: { enum: [1, 12, 123] },
  freeObject: { type: 'object' },
};

const accepts = (schema: object, text: string): boolean => {
  const s = advanceText(startState(compileSchema(schema, true).root), text);
  return s !== null && s.complete;
};

describe('json schema grammar', () => {
  it('accepts texts that fit and refuses those that do not, character by character', () => {
    const ok = '{"name": "Ann", "age": 31, "tags": ["a"], "address": {"city": "Oslo", "zip": null}, "kind": "person"}';
    assert.ok(accepts(PERSON, ok));
    assert.ok(accepts(PERSON, '{\n  "name":"B","age":-0,"height":1.5e+3,"student":false,"role":7,"tags":["x","y","z"],"address":{"city":"\\u00e9\\n"},"nick":4,"kind":"person"}'));
    for (const bad of [
      ok.replace('"age": 31, ', ''), // a required property missing
      ok.replace('31', '31.5'), // an integer with a fraction
      ok.replace('["a"]', '[]'), // fewer than minItems
      ok.replace('["a"]', '["a","b","c","d"]'), // more than maxItems
      ok.replace('"person"', '"robot"'), // not the const
      ok.replace('"age"', '"aged"'), // a key not among the properties
      ok.replace('"Ann"', 'Ann'), // a string without quotes
      ok.replace('{"city"', '{"town"'), // additionalProperties false
      ok.replace('"kind"', '"age": 3, "kind"'), // a property twice (order is the schema's)
    ]) assert.ok(!accepts(PERSON, bad), bad);
    assert.ok(!accepts(PERSON, ok.slice(0, -1)), 'an open object is not complete');
    assert.ok(accepts({ enum: [1, 12] }, '1') && accepts({ enum: [1, 12] }, '12') && !accepts({ enum: [1, 12] }, '13'));
  });

  it('bounds whitespace in a row, so a model cannot loop on spaces', () => {
    const root = compileSchema({ type: 'object' }, true).root;
    assert.notEqual(advanceText(startState(root), `{${' '.repeat(MAX_WS)}}`), null);
    assert.equal(advanceText(startState(root), `{${' '.repeat(MAX_WS + 1)}}`), null);
  });

  it('refuses by keyword what it cannot enforce when strict, and lists it otherwise', () => {
    const pattern = { type: 'object', properties: { a: { type: 'string', pattern: '^x' } } };
    assert.throws(() => compileSchema(pattern, true), (e: SchemaError) => e.keyword === 'pattern' && e.path === '/properties/a');
    assert.deepEqual(compileSchema(pattern, false).ignored, ['/properties/a: pattern']);
    assert.throws(() => compileSchema({ type: 'integer', minimum: 0 }, true), (e: SchemaError) => e.keyword === 'minimum');
    assert.throws(() => compileSchema({ $defs: { n: { type: 'array', items: { $ref: '#/$defs/n' } } }, $ref: '#/$defs/n' }, false), (e: SchemaError) => e.keyword === '$ref');
    assert.throws(() => compileSchema({ anyOf: [{ type: 'object' }, { type: 'object', properties: { a: { type: 'string' } } }] }, true), (e: SchemaError) => e.keyword === 'anyOf');
    assert.throws(() => compileSchema({ type: 'object', properties: {}, required: ['a'] }, false), (e: SchemaError) => e.keyword === 'required');
    // Definitions that each use the next twice, 40 deep: compiled once each, not 2^40 times.
    const defs = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`d${i}`, i === 39 ? { type: 'integer' } : { type: 'object', properties: { a: { $ref: `#/$defs/d${i + 1}` }, b: { $ref: `#/$defs/d${i + 1}` } }, required: ['a', 'b'], additionalProperties: false }]));
    const start = performance.now();
    assert.ok(accepts({ $defs: defs, $ref: '#/$defs/d37' }, '{"a": {"a": 1, "b": 2}, "b": {"a": 3, "b": 4}}'));
    assert.ok(performance.now() - start < 1000);
  });
});

describe('token mask', () => {
  it('the trie walk allows exactly the tokens a brute force over the vocabulary allows', () => {
    const grammar = grammarOf(PERSON);
    for (const prefix of ['', '{', '{"', '{"name": "', '{"name": "A\\', '{"name": "A', '{"name": "A", "age": 1', '{"name": "A", "age": 12, "tags": [', '{"name":"A","age":1,"tags":["t"],"address":{"city":"c"},"kind":"person"']) {
      const state = advanceText(startState(compileSchema(PERSON, true).root), prefix)!;
      const brute = JSON_TEXTS.map((t, id) => (vocab.texts[id] !== null && advanceText(state, t) !== null ? id : -1)).filter((id) => id >= 0);
      assert.deepEqual(idsOf(grammar.mask(vocab, state)), brute, prefix);
    }
    // Pieces of a character (U+FFFD) and the end id are never in a mask.
    const inString = advanceText(startState(compileSchema({ type: 'string' }, true).root), '"')!;
    const mask = idsOf(grammar.mask(vocab, inString));
    assert.ok(!mask.includes(JSON_TEXTS.indexOf('\uFFFD')) && !mask.includes(EOS) && mask.includes(JSON_TEXTS.indexOf('é')));
  });

  for (const [name, schema] of Object.entries({ ...SCHEMAS, json_object: null })) {
    it(`random tokens drawn under the mask always end as JSON that fits (${name})`, () => {
      const grammar = schema ? grammarOf(schema) : new JsonGrammar(anyJson().object);
      const rng = new Rng(7);
      let finished = 0;
      for (let trial = 0; trial < 60; trial++) {
        // Random logits each step: a random-weight model in miniature; the sequence samples under the mask.
        const seq = new Sequence([0], { constraint: { grammar, vocab }, eosIds: [EOS], maxNewTokens: 300, temperature: 1, seed: trial });
        while (!seq.stopped()) seq.choose(Float32Array.from({ length: 128 }, () => rng.normal() * 3));
        const reason = seq.stopped();
        if (reason === 'length') continue;
        finished++;
        const text = jsonTokenizer.decode(seq.ids.filter((id) => id !== EOS));
        const value = JSON.parse(text) as unknown;
        if (schema) assert.equal(misfit(value, schema as Record<string, unknown>), null, text);
        else assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), text);
      }
      assert.ok(finished >= 10, `only ${finished} of 60 replies finished within 300 tokens`);
    });
  }

  it('stops once nothing may follow the value, without an end id', () => {
    const seq = new Sequence([0], { constraint: { grammar: grammarOf({ type: 'array', maxItems: 0 }), vocab }, maxNewTokens: 50 });
    const logits = new Float32Array(128);
    logits[JSON_TEXTS.indexOf('[')] = 5;
    seq.choose(logits);
    logits[JSON_TEXTS.indexOf(']')] = 6;
    seq.choose(logits);
    assert.equal(jsonTokenizer.decode(seq.ids), '[]');
    assert.equal(seq.stopped(), 'stop');
  });
});
