/**
 * Hermes tool calls streamed as OpenAI streams them: as a reply's text grows past a `<tool_call>`,
 * a delta naming each call (index, id, type, function.name, empty arguments) once its name is
 * whole, then its arguments' text as it comes, up to where the arguments' JSON value closes. The
 * text is the reply's so far (growing); each update returns the deltas not yet sent.
 */
import { randomUUID } from 'node:crypto';

/** A tool_calls delta entry, as OpenAI's chat chunks carry them. */
export type ToolCallDelta = { index: number; id?: string; type?: 'function'; function: { name?: string; arguments: string } };

/** A call's opening up to its arguments' first character (so the arguments sent never start with spaces: clients parse them as they grow). */
const HEADER = /<tool_call>\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*(?=\S)/y;

/** Where the JSON value starting at `from` ends (the index after it), or -1 while it is still open. */
function valueEnd(text: string, from: number): number {
  let depth = 0;
  let inString = false;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/** A JSON string's content unescaped (as written, should its escapes not be JSON's). */
function unquoted(content: string): string {
  try {
    return JSON.parse(`"${content}"`) as string;
  } catch {
    return content;
  }
}

interface Call {
  /** Where its arguments start in the text. */
  argsAt: number;
  /** Characters of its arguments sent. */
  sent: number;
  /** Where its arguments end (-1: still open). */
  end: number;
}

export class ToolCallStream {
  private readonly calls: Call[] = [];
  /** Where to look for the next call's header. */
  private searchFrom = 0;

  /** Whether any call has been announced (the choice then finishes with tool_calls). */
  get called(): boolean {
    return this.calls.length > 0;
  }

  /** The deltas `text` (the reply so far) adds to those sent. */
  update(text: string): ToolCallDelta[] {
    const out: ToolCallDelta[] = [];
    for (;;) {
      const last = this.calls[this.calls.length - 1];
      if (last) this.sendArguments(last, this.calls.length - 1, text, out);
      if (last && last.end < 0) return out;
      const at = text.indexOf('<tool_call>', this.searchFrom);
      if (at < 0) return out;
      HEADER.lastIndex = at;
      const header = HEADER.exec(text);
      if (!header || header.index !== at) return out;
      const index = this.calls.length;
      this.calls.push({ argsAt: at + header[0].length, sent: 0, end: -1 });
      out.push({ index, id: `call_${randomUUID().replace(/-/g, '').slice(0, 24)}`, type: 'function', function: { name: unquoted(header[1]), arguments: '' } });
    }
  }

  /** The arguments' text of `call` not yet sent, up to their end once it is known. */
  private sendArguments(call: Call, index: number, text: string, out: ToolCallDelta[]): void {
    if (call.end < 0) {
      call.end = valueEnd(text, call.argsAt);
      if (call.end >= 0) this.searchFrom = call.end;
    }
    const upTo = call.end >= 0 ? call.end : text.length;
    const piece = text.slice(call.argsAt + call.sent, upTo);
    if (piece.length === 0) return;
    call.sent += piece.length;
    out.push({ index, function: { arguments: piece } });
  }
}
