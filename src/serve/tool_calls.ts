/**
 * Tool calls (OpenAI's `tools`, `tool_choice`): the functions checked, the grammar that makes a
 * reply one call of them with arguments fitting the function's JSON schema, and the model's
 * tool-call syntax parsed back into OpenAI's `tool_calls`. Two syntaxes, as the chat templates that
 * take `tools` teach them: Hermes / Qwen2.5's `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`
 * (also the default, and what a model without a template is told), and Llama 3.1's bare JSON
 * `{"name": ..., "parameters": {...}}`.
 */
import { randomUUID } from 'node:crypto';
import { type JsonNode, SchemaError, compileSchema } from '../generate/json_schema_grammar.js';
import { JsonGrammar } from '../generate/token_mask.js';
import { badField } from './api_error.js';
import { cachedGrammar } from './response_format.js';

export interface ToolFunction {
  name: string;
  description?: string;
  /** The arguments' JSON schema (an object schema; none: any object). */
  parameters: Record<string, unknown>;
  strict: boolean;
}

/** `none`: never call; `auto`: the model chooses; `required`: a call of any; `{name}`: a call of that one. */
export type ToolChoice = 'none' | 'auto' | 'required' | { name: string };

export type ToolSyntax = 'hermes' | 'llama3';

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

type Body = Record<string, unknown>;

/** `tools`: [{type: "function", function: {name, description?, parameters?, strict?}}], checked field by field. */
export function parseTools(v: unknown): ToolFunction[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badField('tools', 'must be an array of {type: "function", function: {name, parameters}}');
  return v.map((t: Body, i) => {
    if (typeof t !== 'object' || t === null || t.type !== 'function') throw badField(`tools[${i}].type`, 'must be "function" (the only tool type served)');
    const f = t.function as Body;
    if (typeof f !== 'object' || f === null) throw badField(`tools[${i}].function`, 'must be an object {name, description?, parameters?}');
    if (typeof f.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(f.name)) throw badField(`tools[${i}].function.name`, 'must be letters, digits, _ and -, at most 64 long');
    if (f.description !== undefined && typeof f.description !== 'string') throw badField(`tools[${i}].function.description`, 'must be a string');
    const parameters = f.parameters ?? { type: 'object', properties: {} };
    if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) throw badField(`tools[${i}].function.parameters`, 'must be a JSON schema object');
    if (f.strict !== undefined && f.strict !== null && typeof f.strict !== 'boolean') throw badField(`tools[${i}].function.strict`, 'must be a boolean');
    return { name: f.name, ...(typeof f.description === 'string' ? { description: f.description } : {}), parameters: parameters as Body, strict: f.strict === true };
  }).map((fn, i, all) => {
    if (all.findIndex((g) => g.name === fn.name) !== i) throw badField(`tools[${i}].function.name`, `repeats '${fn.name}'`);
    return fn;
  });
}

/** `tool_choice` (default: auto with tools, none without), a named function checked against the tools. */
export function parseToolChoice(v: unknown, tools: readonly ToolFunction[]): ToolChoice {
  if (v === undefined || v === null) return tools.length > 0 ? 'auto' : 'none';
  if (v === 'none') return 'none';
  if (v === 'auto' || v === 'required') {
    if (tools.length === 0) throw badField('tool_choice', `'${v}' needs tools`);
    return v;
  }
  const name = (v as { function?: { name?: unknown } })?.function?.name;
  if (typeof v !== 'object' || (v as Body).type !== 'function' || typeof name !== 'string') throw badField('tool_choice', 'must be "none", "auto", "required" or {type: "function", function: {name}}');
  if (!tools.some((t) => t.name === name)) throw badField('tool_choice', `names '${name}', which is not among the tools`);
  return { name };
}

/** The syntax a chat template teaches: Llama 3.1's JSON where its template asks for "parameters", Hermes' tags otherwise. */
export function toolSyntax(templateSource: string | null): ToolSyntax {
  return templateSource !== null && templateSource.includes('"parameters": dictionary of argument name') ? 'llama3' : 'hermes';
}

/** The tools as a chat template takes them (transformers' apply_chat_template(tools=...): OpenAI's shape). */
export function templateTools(tools: readonly ToolFunction[]): object[] {
  return tools.map((t) => ({ type: 'function', function: { name: t.name, ...(t.description ? { description: t.description } : {}), parameters: t.parameters } }));
}

/** What a model without a chat template is told of the tools (a system line before the conversation). */
export function plainToolsPrompt(tools: readonly ToolFunction[]): string {
  return `You may call these functions, replying <tool_call>\n{"name": <function name>, "arguments": <arguments object>}\n</tool_call>: ${JSON.stringify(templateTools(tools))}`;
}

const literal = (id: number, text: string): JsonNode => ({ kind: 'literal', id, texts: [text] });

/**
 * The grammar of one call of `tools` in `syntax` (its arguments fitting the function's schema); a
 * schema that cannot be enforced under its function's strict is a 400 naming the tool. Under
 * tool_choice auto the grammar applies from where the model opens a call.
 */
export function toolGrammar(tools: readonly ToolFunction[], choice: Exclude<ToolChoice, 'none'>, syntax: ToolSyntax): JsonGrammar {
  // Agents send the same tools turn after turn: their grammar (and its cached masks) is kept.
  return cachedGrammar(`tools:${syntax}:${JSON.stringify(choice)}:${JSON.stringify(tools)}`, () => buildToolGrammar(tools, choice, syntax));
}

function buildToolGrammar(tools: readonly ToolFunction[], choice: Exclude<ToolChoice, 'none'>, syntax: ToolSyntax): JsonGrammar {
  const chosen = typeof choice === 'object' ? tools.filter((t) => t.name === choice.name) : tools;
  let id = 2;
  const key = syntax === 'hermes' ? 'arguments' : 'parameters';
  const cases = chosen.map((t) => {
    let args;
    try {
      args = compileSchema(t.parameters, t.strict, id);
    } catch (e) {
      if (e instanceof SchemaError) throw badField(`tools[${tools.indexOf(t)}].function.parameters`, `is not supported: ${e.message}`);
      throw e;
    }
    id = args.nextId + 2;
    const then: JsonNode = { kind: 'seq', id: args.nextId, parts: [args.root, literal(args.nextId + 1, '}')] };
    return { text: `{"name": ${JSON.stringify(t.name)}, "${key}": `, then };
  });
  const call: JsonNode = { kind: 'switch', id: id++, cases };
  const root: JsonNode = syntax === 'hermes' ? { kind: 'seq', id: id++, parts: [literal(id++, '<tool_call>\n'), call, literal(id++, '\n</tool_call>')] } : call;
  const trigger = choice === 'auto' ? (syntax === 'hermes' ? { text: '<tool_call>', atStart: false } : { text: '{', atStart: true }) : null;
  return new JsonGrammar(root, trigger);
}

/** The calls in a reply's text and the text around them (null when none is left), in `syntax`; calls that do not parse stay text. */
export function parseToolCalls(text: string, syntax: ToolSyntax): { content: string | null; calls: ToolCall[] } {
  const calls: ToolCall[] = [];
  const asCall = (json: string): boolean => {
    let v: Body;
    try {
      v = JSON.parse(json) as Body;
    } catch {
      return false;
    }
    const args = syntax === 'hermes' ? v?.arguments : v?.parameters ?? v?.arguments;
    if (typeof v !== 'object' || v === null || typeof v.name !== 'string' || typeof args !== 'object' || args === null) return false;
    calls.push({ id: `call_${randomUUID().replace(/-/g, '').slice(0, 24)}`, type: 'function', function: { name: v.name, arguments: JSON.stringify(args) } });
    return true;
  };
  if (syntax === 'llama3') {
    const body = text.trim().replace(/^<\|python_tag\|>/, '');
    return body.startsWith('{') && asCall(body) ? { content: null, calls } : { content: text, calls };
  }
  const rest = text.replace(/<tool_call>\s*([\s\S]*?)\s*<\/tool_call>/g, (whole, json: string) => (asCall(json) ? '' : whole)).trim();
  return { content: calls.length > 0 && rest === '' ? null : calls.length > 0 ? rest : text, calls };
}
