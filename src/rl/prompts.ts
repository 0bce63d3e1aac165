/**
 * GRPO's prompt data (`grpo --data-file prompts.jsonl`), as TRL's GRPOTrainer reads a data set: one
 * JSON object a line whose `prompt` (--prompt-field) is a text (standard) or a list of messages
 * (conversational: rendered with the chat template and its generation prompt); every field of the
 * row goes to the reward functions (the answer they check, anything else). A line that is not such
 * a row is refused naming the file and line.
 */
import { DataError } from '../data/errors.js';
import { readJsonlRecords } from '../data/jsonl_records.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { ChatTemplate } from '../generate/chat_template.js';
import { promptIds } from '../generate/reply.js';

export interface PromptRow {
  /** The prompt as the rewards see it: its text, or the rendered conversation. */
  text: string;
  /** Its token ids. */
  ids: number[];
  /** The data set's row, whole. */
  row: Readonly<Record<string, unknown>>;
}

export interface PromptSource {
  tokenizer: Tokenizer;
  chatTemplate: ChatTemplate | null;
}

/** Every row of the file, its prompt tokenized (a conversation rendered with the template first). */
export function readPrompts(file: string, field: string, source: PromptSource): PromptRow[] {
  const rows = readJsonlRecords(file, '--data-file takes a JSONL file of prompts').map(({ record, where }) => promptOf(record, where, field, source));
  if (rows.length === 0) throw new DataError(file, `holds no prompts (one JSON object a line with a "${field}" field)`);
  return rows;
}

/** A data set row as GRPO samples it: its prompt's text and ids (`where` names it in errors). */
export function promptOf(row: Readonly<Record<string, unknown>>, where: string, field: string, source: PromptSource): PromptRow {
  const prompt = row[field];
  const text = typeof prompt === 'string' ? prompt : conversation(prompt, where, field, source);
  const ids = typeof prompt === 'string' ? promptIds(source.tokenizer, prompt) : Array.from(source.tokenizer.encode(text));
  if (ids.length === 0) throw new DataError(where, `"${field}" encodes to no tokens`);
  return { text, ids, row };
}

/** A conversational prompt rendered with the chat template and its generation prompt. */
function conversation(prompt: unknown, where: string, field: string, source: PromptSource): string {
  const ok = Array.isArray(prompt) && prompt.length > 0 && prompt.every((m) => typeof m?.role === 'string' && typeof m?.content === 'string');
  if (!ok) throw new DataError(where, `"${field}" must be a text or a non-empty list of {"role", "content"} messages`);
  if (!source.chatTemplate) throw new DataError(where, `"${field}" is a conversation, and the model's tokenizer has no chat template`);
  return source.chatTemplate.render(prompt as { role: string; content: string }[], { addGenerationPrompt: true });
}
