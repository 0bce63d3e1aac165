/**
 * For the constrained-decoding tests: a tokenizer whose tokens are the printable ASCII characters,
 * whitespace and multi-character pieces of JSON (so a token may cross a string's end or a number's),
 * and a checker that a parsed value fits a JSON schema of the subset we enforce.
 */
const PIECES = ['{"', '":', '": "', '", "', '"}', '},', '[{', '}]', ' "', 'true', 'false', 'null', '12', '3.5', '-0', 'e+', 'name', 'age', '\\u00e9', 'é', '\uFFFD', '  ', '\n  ', '"]', '1}', ', '];

/** id → text: 0..94 the printable ASCII characters, then \n, \t, then PIECES; the rest up to 128 decode to nothing. */
export const JSON_TEXTS: string[] = [...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)), '\n', '\t', ...PIECES];

export const jsonTokenizer = {
  vocabSize: 128,
  encode: (text: string): number[] => Array.from(text, (c) => {
    const i = JSON_TEXTS.indexOf(c);
    return i >= 0 ? i : 0;
  }),
  decode: (ids: ArrayLike<number>): string => Array.from(ids, (i) => JSON_TEXTS[i] ?? '').join(''),
};

type Schema = Record<string, unknown>;

/** Why `value` does not fit `schema` (the subset json_schema_grammar enforces), or null when it does. */
export function misfit(value: unknown, schema: Schema, root: Schema = schema, path = '$'): string | null {
  if (schema.$ref) return misfit(value, (root.$defs as Schema)[(schema.$ref as string).split('/').pop()!] as Schema, root, path);
  if (schema.enum) return (schema.enum as unknown[]).some((e) => JSON.stringify(e) === JSON.stringify(value)) ? null : `${path}: not in enum`;
  if (schema.const !== undefined) return JSON.stringify(schema.const) === JSON.stringify(value) ? null : `${path}: not the const`;
  const branches = (schema.anyOf ?? (Array.isArray(schema.type) ? (schema.type as string[]).map((t) => ({ ...schema, type: t })) : null)) as Schema[] | null;
  if (branches) return branches.some((b) => misfit(value, b, root, path) === null) ? null : `${path}: fits no branch`;
  const type = schema.type;
  const kind = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  if (type === 'integer') return Number.isInteger(value) ? null : `${path}: not an integer`;
  if (type === 'number') return kind === 'number' ? null : `${path}: not a number`;
  if (type !== undefined && type !== kind) return `${path}: ${kind}, not ${type}`;
  if (kind === 'object') {
    const o = value as Schema;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const r of (schema.required ?? []) as string[]) if (!(r in o)) return `${path}: '${r}' missing`;
    for (const [k, v] of Object.entries(o)) {
      if (k in props) {
        const why = misfit(v, props[k], root, `${path}.${k}`);
        if (why) return why;
      } else if (Object.keys(props).length > 0 || schema.additionalProperties === false) return `${path}: '${k}' is not a property`;
    }
  }
  if (kind === 'array') {
    const a = value as unknown[];
    if (schema.minItems !== undefined && a.length < (schema.minItems as number)) return `${path}: fewer than minItems`;
    if (schema.maxItems !== undefined && a.length > (schema.maxItems as number)) return `${path}: more than maxItems`;
    if (schema.items) for (const [i, x] of a.entries()) {
      const why = misfit(x, schema.items as Schema, root, `${path}[${i}]`);
      if (why) return why;
    }
  }
  return null;
}
