/**
 * Chat fine-tuning data as JSONL, one example a line, in the forms TRL's SFTTrainer reads:
 *   - `{"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}`
 *     (OpenAI's format: a whole conversation; the assistant turns are learned);
 *   - `{"prompt": [...messages], "completion": [...messages]}` (conversational prompt/completion: the
 *     completion is learned);
 *   - `{"prompt": "...", "completion": "..."}` (plain text, no template: the completion is learned).
 * Conversations may call tools as OpenAI's and transformers' formats write it: an assistant message
 * with `tool_calls` (its content empty or absent), `role: "tool"` messages with the results
 * (`tool_call_id`, `name`), and the example's `tools` (the functions' JSON schemas), which the chat
 * template renders; the assistant's calls are learned like its words.
 * A line that is not one of these is refused with the file and line.
 */
import { readFileSync } from 'node:fs';
import { DataError } from './errors.js';
import { readJsonlRecords } from './jsonl_records.js';

export interface ChatTurn {
  role: string;
  content: string;
  /** An assistant's function calls, as given (`[{type: "function", function: {name, arguments}}]`). */
  tool_calls?: unknown[];
  /** A tool message: the call it answers and the function's name. */
  tool_call_id?: string;
  name?: string;
}

export type ChatExample =
  | { readonly messages: readonly ChatTurn[]; readonly tools?: readonly unknown[] }
  | { readonly prompt: readonly ChatTurn[]; readonly completion: readonly ChatTurn[] }
  | { readonly prompt: string; readonly completion: string };

/** Every example of a chat JSONL file (blank lines skipped). */
export function readChatExamples(file: string): ChatExample[] {
  const examples = readJsonlRecords(file, '').map(({ record, where }) => chatExample(record, where));
  if (examples.length === 0) throw new DataError(file, 'holds no chat example (JSONL with "messages", or "prompt" and "completion")');
  return examples;
}

/** True when the first record of a JSONL file is a chat example (`messages`, or `prompt` and `completion`). */
export function looksLikeChat(file: string): boolean {
  if (!/\.(jsonl|ndjson)$/i.test(file)) return false;
  let first: unknown;
  try {
    const line = readFileSync(file, 'utf8').split('\n').find((l) => l.trim() !== '');
    first = line === undefined ? null : JSON.parse(line);
  } catch {
    return false;
  }
  if (typeof first !== 'object' || first === null) return false;
  return 'messages' in first || ('prompt' in first && 'completion' in first);
}

function chatExample(r: Record<string, unknown>, where: string): ChatExample {
  if ('messages' in r) return { messages: turns(r.messages, where, 'messages'), ...toolsOf(r.tools, where) };
  if (!('prompt' in r) || !('completion' in r)) throw new DataError(where, 'has neither "messages" nor "prompt" and "completion"');
  if (typeof r.prompt === 'string' && typeof r.completion === 'string') return { prompt: r.prompt, completion: r.completion };
  if (Array.isArray(r.prompt) && Array.isArray(r.completion)) {
    return { prompt: turns(r.prompt, where, 'prompt'), completion: turns(r.completion, where, 'completion') };
  }
  throw new DataError(where, '"prompt" and "completion" must both be strings or both be lists of messages');
}

function toolsOf(tools: unknown, where: string): { tools?: unknown[] } {
  if (tools === undefined || tools === null) return {};
  if (!Array.isArray(tools) || !tools.every((t) => typeof t === 'object' && t !== null)) throw new DataError(where, '"tools" must be a list of function schemas ({"type": "function", "function": {...}})');
  return { tools };
}

function turns(value: unknown, where: string, field: string): ChatTurn[] {
  if (!Array.isArray(value) || value.length === 0) throw new DataError(where, `"${field}" must be a non-empty list of {role, content}`);
  return value.map((m, i) => turn(m, `${field}[${i}]`, where));
}

/** One message: {role, content}, an assistant's with tool_calls (content may then be empty, null or absent), a tool's with its call id and name. */
function turn(m: unknown, at: string, where: string): ChatTurn {
  const t = m as { role?: unknown; content?: unknown; tool_calls?: unknown; tool_call_id?: unknown; name?: unknown } | null;
  if (typeof t !== 'object' || t === null || typeof t.role !== 'string') throw new DataError(where, `${at} must be {"role": string, "content": string}`);
  const calls = t.tool_calls;
  if (calls !== undefined && calls !== null && (t.role !== 'assistant' || !Array.isArray(calls) || calls.length === 0)) {
    throw new DataError(where, `${at}.tool_calls must be a non-empty list, on an assistant message`);
  }
  const calling = Array.isArray(calls);
  if (typeof t.content !== 'string' && !(calling && (t.content === undefined || t.content === null))) {
    throw new DataError(where, `${at} must be {"role": string, "content": string}${t.role === 'assistant' ? ' (or an assistant\'s "tool_calls")' : ''}`);
  }
  return {
    role: t.role, content: typeof t.content === 'string' ? t.content : '',
    ...(calling ? { tool_calls: calls as unknown[] } : {}),
    ...(typeof t.tool_call_id === 'string' ? { tool_call_id: t.tool_call_id } : {}),
    ...(typeof t.name === 'string' ? { name: t.name } : {}),
  };
}
