/**
 * OpenAI's `response_format`: `{"type": "text"}` (nothing constrained), `{"type": "json_object"}`
 * (any JSON object) or `{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`,
 * compiled to the grammar constrained decoding walks (generate/json_schema_grammar.ts). Grammars
 * are kept by schema text, so a schema's token masks, cached in its grammar, serve every request
 * that sends it again (agents send the same schema over and over).
 */
import { SchemaError, anyJson, compileSchema } from '../generate/json_schema_grammar.js';
import { JsonGrammar } from '../generate/token_mask.js';
import { badField } from './api_error.js';

/** Schemas whose grammars (and their cached masks) are kept; the oldest goes first beyond it. */
const MAX_GRAMMARS = 64;
const grammars = new Map<string, JsonGrammar>();
const ANY_OBJECT = new JsonGrammar(anyJson().object);

/** The grammar under `key`, built by `build` the first time (and again once it has aged out). */
export function cachedGrammar(key: string, build: () => JsonGrammar): JsonGrammar {
  const known = grammars.get(key);
  if (known) return known;
  const grammar = build();
  if (grammars.size >= MAX_GRAMMARS) grammars.delete(grammars.keys().next().value!);
  grammars.set(key, grammar);
  return grammar;
}

/** The grammar of `schema` (compiled once per schema text and strictness); a SchemaError names what it cannot take. */
export function grammarOf(schema: unknown, strict: boolean): JsonGrammar {
  return cachedGrammar(`schema:${strict ? 's' : 'l'}${JSON.stringify(schema)}`, () => new JsonGrammar(compileSchema(schema, strict).root));
}

/** The grammar a request's `response_format` asks for, or null for free text; a bad one is a 400 naming the field. */
export function responseGrammar(v: unknown): JsonGrammar | null {
  if (v === undefined || v === null) return null;
  const f = v as Record<string, unknown>;
  if (typeof v !== 'object' || Array.isArray(v)) throw badField('response_format', 'must be an object {type: "text" | "json_object" | "json_schema", ...}');
  if (f.type === 'text') return null;
  if (f.type === 'json_object') return ANY_OBJECT;
  if (f.type !== 'json_schema') throw badField('response_format.type', `must be "text", "json_object" or "json_schema", got ${JSON.stringify(f.type)}`);
  const js = f.json_schema as Record<string, unknown> | undefined;
  if (typeof js !== 'object' || js === null || Array.isArray(js)) throw badField('response_format.json_schema', 'must be an object {name, schema, strict}');
  if (typeof js.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(js.name)) throw badField('response_format.json_schema.name', 'must be a string of letters, digits, _ and -, at most 64 long');
  if (js.strict !== undefined && js.strict !== null && typeof js.strict !== 'boolean') throw badField('response_format.json_schema.strict', 'must be a boolean');
  // No schema: any JSON value is the reply (OpenAI's schema is optional).
  const schema = js.schema ?? {};
  try {
    return grammarOf(schema, js.strict === true);
  } catch (e) {
    if (e instanceof SchemaError) throw badField('response_format.json_schema.schema', `is not supported: ${e.message}`);
    throw e;
  }
}
