/**
 * A JSON schema compiled into the small grammar the JSON automaton (json_automaton.ts) walks: the
 * subset of JSON Schema that OpenAI's structured outputs take (object, array, string, number,
 * integer, boolean, null, enum, const, required, nested, `$defs`/`$ref` without cycles, `anyOf` and
 * type lists whose branches start differently), each node a value the automaton can decide
 * character by character. What cannot be enforced is refused by keyword when `strict`, and otherwise
 * left unenforced (`ignored` names it), as the brief of issue 48 and OpenAI's strict mode have it.
 */

/** A grammar node: what one JSON value may be. */
export type JsonNode =
  | { readonly kind: 'any'; readonly id: number }
  /** Properties in schema order (the automaton emits them in that order); `free`: the value of any key (objects without properties). */
  | { readonly kind: 'object'; readonly id: number; readonly props: readonly JsonProp[]; readonly free: JsonNode | null }
  | { readonly kind: 'array'; readonly id: number; readonly items: JsonNode; readonly min: number; readonly max: number }
  | { readonly kind: 'string'; readonly id: number }
  | { readonly kind: 'number'; readonly id: number; readonly integer: boolean }
  /** One of these JSON texts exactly (enum, const, true/false, null). */
  | { readonly kind: 'literal'; readonly id: number; readonly texts: readonly string[] }
  /** One of these, told apart by their first character. */
  | { readonly kind: 'union'; readonly id: number; readonly options: readonly JsonNode[] }
  /** Beyond JSON values, for text around them (a tool call's tags): these parts one after another, exactly. */
  | { readonly kind: 'seq'; readonly id: number; readonly parts: readonly JsonNode[] }
  /** One of the texts of `cases` (none a prefix of another), then what follows that one (a tool call's name, then its arguments). */
  | { readonly kind: 'switch'; readonly id: number; readonly cases: readonly { readonly text: string; readonly then: JsonNode }[] };

export interface JsonProp {
  readonly key: string;
  /** The key as it appears in JSON text, quotes included. */
  readonly text: string;
  readonly value: JsonNode;
  readonly required: boolean;
}

export class SchemaError extends Error {
  /** `keyword`: the schema keyword at fault; `path`: where it sits (JSON pointer). */
  constructor(readonly keyword: string, readonly path: string, why: string) {
    super(`${why} (keyword '${keyword}' at ${path || '/'})`);
    this.name = 'SchemaError';
  }
}

export interface CompiledSchema {
  root: JsonNode;
  /** Keywords present but not enforced (non-strict only), with where they sit. */
  ignored: string[];
  /** The first node id it left unused (several schemas compiled into one grammar number their nodes apart). */
  nextId: number;
}

/** Keywords that only describe (nothing to enforce). */
const DESCRIPTIVE = new Set(['title', 'description', '$schema', '$id', '$comment', 'examples', 'default', 'deprecated', 'readOnly', 'writeOnly', '$defs', 'definitions']);
/** Keywords each kind enforces (with `type`, `enum`, `const`, `anyOf`, `$ref` everywhere). */
const ENFORCED: Record<string, readonly string[]> = {
  object: ['properties', 'required', 'additionalProperties'],
  array: ['items', 'minItems', 'maxItems'],
};
const COMMON = new Set(['type', 'enum', 'const', 'anyOf', 'oneOf', '$ref', 'nullable']);

/** Characters a value of `node` may start with. */
export function firstChars(node: JsonNode): string {
  switch (node.kind) {
    case 'any': return '{["-0123456789tfn';
    case 'object': return '{';
    case 'array': return '[';
    case 'string': return '"';
    case 'number': return '-0123456789';
    case 'literal': return [...new Set(node.texts.map((t) => t[0]))].join('');
    case 'union': return node.options.map(firstChars).join('');
    case 'seq': return firstChars(node.parts[0]);
    case 'switch': return [...new Set(node.cases.map((c) => c.text[0]))].join('');
  }
}

/** The nodes of `json_object`: any JSON value, and an object at the top. */
export function anyJson(): { value: JsonNode; object: JsonNode } {
  const value: JsonNode = { kind: 'any', id: 0 };
  return { value, object: { kind: 'object', id: 1, props: [], free: value } };
}

type Schema = Record<string, unknown>;

class Compiler {
  readonly ignored: string[] = [];
  private readonly resolving = new Set<string>();
  /** Each reference compiled once: a node does not depend on where it is used, and a schema whose definitions refer to each other twice over would otherwise grow exponentially. */
  private readonly resolved = new Map<string, JsonNode>();
  private readonly any = anyJson().value;

  constructor(private readonly rootSchema: Schema, private readonly strict: boolean, public nextId: number) {}

  private id(): number {
    return this.nextId++;
  }

  /** Refuses (strict) or records (otherwise) a keyword we cannot enforce. */
  private unenforced(keyword: string, path: string, why: string): void {
    if (this.strict) throw new SchemaError(keyword, path, why);
    this.ignored.push(`${path || '/'}: ${keyword}`);
  }

  node(s: unknown, path: string): JsonNode {
    if (s === true || (typeof s === 'object' && s !== null && Object.keys(s).every((k) => DESCRIPTIVE.has(k)))) return this.any;
    if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new SchemaError('type', path, 'a schema must be an object');
    const schema = s as Schema;
    // OpenAPI's nullable (zod's openai helper writes it): the schema or null.
    if (schema.nullable === true) {
      const { nullable: _, ...rest } = schema;
      return this.unionOf([this.node(rest, path), { kind: 'literal', id: this.id(), texts: ['null'] }], 'nullable', path);
    }
    if (schema.$ref !== undefined) return this.ref(schema, path);
    if (schema.enum !== undefined) return this.literal(schema.enum, 'enum', path);
    if (schema.const !== undefined) return this.literal([schema.const], 'const', path);
    const branches = schema.anyOf ?? schema.oneOf;
    if (branches !== undefined) return this.union(branches, schema.anyOf !== undefined ? 'anyOf' : 'oneOf', path);
    const type = schema.type;
    if (Array.isArray(type)) {
      return this.unionOf(type.map((t, i) => this.typed({ ...schema, type: t }, `${path}/type/${i}`)), 'type', path);
    }
    return this.typed(schema, path);
  }

  private typed(schema: Schema, path: string): JsonNode {
    const type = schema.type;
    if (type === undefined) {
      this.unenforced('type', path, 'a schema without a type (or enum, const, anyOf, $ref) cannot be enforced');
      return this.any;
    }
    this.checkKeywords(schema, String(type), path);
    switch (type) {
      case 'object': return this.object(schema, path);
      case 'array': return this.array(schema, path);
      case 'string': return { kind: 'string', id: this.id() };
      case 'number': return { kind: 'number', id: this.id(), integer: false };
      case 'integer': return { kind: 'number', id: this.id(), integer: true };
      case 'boolean': return { kind: 'literal', id: this.id(), texts: ['true', 'false'] };
      case 'null': return { kind: 'literal', id: this.id(), texts: ['null'] };
      default: throw new SchemaError('type', path, `unknown type ${JSON.stringify(type)}`);
    }
  }

  /** Every keyword of `schema` is one we enforce, one that only describes, or unenforced. */
  private checkKeywords(schema: Schema, type: string, path: string): void {
    for (const k of Object.keys(schema)) {
      if (COMMON.has(k) || DESCRIPTIVE.has(k) || ENFORCED[type]?.includes(k)) continue;
      this.unenforced(k, path, `'${k}' cannot be enforced by this server's constrained decoding`);
    }
  }

  private object(schema: Schema, path: string): JsonNode {
    const props = schema.properties ?? {};
    if (typeof props !== 'object' || props === null || Array.isArray(props)) throw new SchemaError('properties', path, 'must be an object');
    const required = schema.required ?? [];
    if (!Array.isArray(required) || !required.every((r) => typeof r === 'string')) throw new SchemaError('required', path, 'must be an array of property names');
    const missing = required.find((r) => !(r in props));
    if (missing !== undefined) throw new SchemaError('required', path, `names '${missing}', which is not in properties`);
    const entries = Object.entries(props as Schema);
    const extra = schema.additionalProperties;
    if (entries.length === 0) {
      // No properties: keys are free, their values what additionalProperties says (any by default).
      if (extra === false) return { kind: 'object', id: this.id(), props: [], free: null };
      return { kind: 'object', id: this.id(), props: [], free: extra === undefined || extra === true ? this.any : this.node(extra, `${path}/additionalProperties`) };
    }
    if (extra !== undefined && extra !== false) this.unenforced('additionalProperties', path, 'only additionalProperties: false is enforced beside properties');
    return {
      kind: 'object', id: this.id(), free: null,
      props: entries.map(([key, value]) => ({ key, text: JSON.stringify(key), value: this.node(value, `${path}/properties/${key}`), required: required.includes(key) })),
    };
  }

  private array(schema: Schema, path: string): JsonNode {
    const count = (k: string, fallback: number): number => {
      const v = schema[k];
      if (v === undefined) return fallback;
      if (!Number.isInteger(v) || (v as number) < 0) throw new SchemaError(k, path, 'must be an integer >= 0');
      return v as number;
    };
    const min = count('minItems', 0);
    const max = count('maxItems', Infinity);
    if (min > max) throw new SchemaError('minItems', path, `${min} exceeds maxItems ${max}`);
    if (Array.isArray(schema.items)) throw new SchemaError('items', path, 'tuple items (an array) are not supported; use prefixItems-free schemas');
    return { kind: 'array', id: this.id(), items: schema.items === undefined ? this.any : this.node(schema.items, `${path}/items`), min, max };
  }

  private literal(values: unknown, keyword: string, path: string): JsonNode {
    if (!Array.isArray(values) || values.length === 0) throw new SchemaError(keyword, path, 'must be a non-empty array');
    const texts = [...new Set(values.map((v) => JSON.stringify(v)))];
    if (texts.some((t) => t === undefined)) throw new SchemaError(keyword, path, 'holds a value that is not JSON');
    return { kind: 'literal', id: this.id(), texts };
  }

  private union(branches: unknown, keyword: string, path: string): JsonNode {
    if (!Array.isArray(branches) || branches.length === 0) throw new SchemaError(keyword, path, 'must be a non-empty array of schemas');
    return this.unionOf(branches.map((b, i) => this.node(b, `${path}/${keyword}/${i}`)), keyword, path);
  }

  /**
   * One of `options`, decided by the first character: literals merge, and branches that may start
   * alike (two objects, say) would need the automaton to follow both, which it does not.
   */
  private unionOf(options: JsonNode[], keyword: string, path: string): JsonNode {
    const literals = options.filter((o) => o.kind === 'literal') as Extract<JsonNode, { kind: 'literal' }>[];
    const rest = options.filter((o) => o.kind !== 'literal');
    const merged: JsonNode[] = [...rest, ...(literals.length ? [{ kind: 'literal' as const, id: this.id(), texts: [...new Set(literals.flatMap((l) => l.texts))] }] : [])];
    if (merged.length === 1) return merged[0];
    const seen = new Set<string>();
    for (const o of merged) {
      for (const c of firstChars(o)) {
        if (seen.has(c)) {
          this.unenforced(keyword, path, `branches that can start alike (both with '${c}') are not supported`);
          return this.any;
        }
      }
      for (const c of firstChars(o)) seen.add(c);
    }
    return { kind: 'union', id: this.id(), options: merged };
  }

  private ref(schema: Schema, path: string): JsonNode {
    const ref = schema.$ref;
    if (typeof ref !== 'string' || !/^#\/(\$defs|definitions)\/[^/]+$/.test(ref)) throw new SchemaError('$ref', path, `only local references '#/$defs/NAME' are supported, got ${JSON.stringify(ref)}`);
    if (this.resolving.has(ref)) throw new SchemaError('$ref', path, `${ref} refers to itself (recursive schemas are not supported)`);
    const known = this.resolved.get(ref);
    if (known) return known;
    const [, table, name] = ref.split('/');
    const target = (this.rootSchema[table] as Schema | undefined)?.[name];
    if (target === undefined) throw new SchemaError('$ref', path, `${ref} is not defined`);
    this.resolving.add(ref);
    try {
      const node = this.node(target, ref.slice(1));
      this.resolved.set(ref, node);
      return node;
    } finally {
      this.resolving.delete(ref);
    }
  }
}

/** Compiles `schema`, its nodes numbered from `firstId`; strict: a keyword that cannot be enforced is a SchemaError naming it. */
export function compileSchema(schema: unknown, strict: boolean, firstId = 2): CompiledSchema {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw new SchemaError('type', '', 'the schema must be a JSON object');
  const c = new Compiler(schema as Schema, strict, firstId);
  const root = c.node(schema, '');
  return { root, ignored: c.ignored, nextId: c.nextId };
}
