/**
 * What the server needs of a loaded model (gen-cli's Generator has it all): the model, its
 * tokenizer, the ids that end a reply, its context, and its chat template when it has one. Without
 * a chat template, chat messages are laid out as plain "role: content" lines (documented in
 * docs/SERVE.md): a model trained here on plain text has none.
 */
import { endOfTurn } from '../generate/chat_template.js';
import type { CausalLm } from '../generate/generate.js';
import type { Sequence } from '../generate/sequence.js';
import { TokenVocabulary } from '../generate/token_mask.js';
import type { ChatMessage } from './request.js';
import { type ToolFunction, plainToolsPrompt, templateTools } from './tool_calls.js';

export interface ServedModel {
  /** The name /v1/models lists and requests must name. */
  id: string;
  model: CausalLm;
  tokenizer: { readonly vocabSize: number; encode(text: string): ArrayLike<number>; decode(ids: ArrayLike<number>): string };
  eosIds: readonly number[];
  /** The longest sequence (prompt + reply) the model takes. */
  context: number;
  /** `source`: the Jinja text (which tool-call syntax it teaches: serve/tool_calls.ts). */
  chatTemplate: { source?: string; render(messages: readonly ChatMessage[], opts?: { addGenerationPrompt?: boolean; tools?: readonly unknown[] }): string } | null;
  /** LoRA adapters served by name beside the base (`serve --lora-modules NAME=DIR`): a request's model picks one. */
  adapters?: readonly string[];
}

/** Decoding rows whose forwards run elsewhere: a pipeline of stages (stages/pipelined_batch.ts) has DecodeBatch's shape. */
export interface RowBatch {
  readonly size: number;
  join(sequence: Sequence): Promise<number>;
  /** Prefills prompts of one length together where the rows can (DecodeBatch); their first tokens, in order. */
  joinAll(sequences: readonly Sequence[]): Promise<number[]>;
  /** Prefills prompts of one length only to record their prompt logprobs (DecodeBatch; absent where the rows cannot). */
  scoreAll?(sequences: readonly Sequence[]): Promise<void>;
  step(): Promise<{ sequence: Sequence; token: number }[]>;
  leave(sequence: Sequence): void;
  /** Set once the rows cannot be decoded any more (a lost pipeline stage): /health answers 503 with it. */
  readonly lost?: Error | null;
}

/** A model served through a pipeline of stages (`serve --stages N`): the rows' forwards run there, not here. */
export interface ServedPipeline extends Omit<ServedModel, 'model'> {
  rows: RowBatch;
}

/** What the server serves: a model in this process, or a pipeline of stages. */
export type Served = ServedModel | ServedPipeline;

/** The model ids a server answers to: the base's, then each adapter's. */
export function servedIds(served: Served): string[] {
  return [served.id, ...('adapters' in served ? served.adapters ?? [] : [])];
}

/** The adapter a request's model id runs (undefined: the base), or null when the server has no such id. */
export function adapterFor(served: Served, model: string): string | undefined | null {
  if (model === served.id) return undefined;
  return servedIds(served).includes(model) ? model : null;
}

/**
 * The prompt text of a chat: the model's template (given the tools, as transformers' apply_chat_template
 * takes them), or "role: content" lines ending with "assistant:", the tools told in a system line first.
 */
export function chatPrompt(served: Served, messages: readonly ChatMessage[], tools: readonly ToolFunction[] = []): string {
  if (served.chatTemplate) return served.chatTemplate.render(messages, { addGenerationPrompt: true, ...(tools.length ? { tools: templateTools(tools) } : {}) });
  const lines = messages.map((m) => `${m.role}: ${m.content}${m.tool_calls ? m.tool_calls.map((c) => `<tool_call>\n${JSON.stringify({ name: c.function.name, arguments: c.function.arguments })}\n</tool_call>`).join('') : ''}`);
  return `${[...(tools.length ? [`system: ${plainToolsPrompt(tools)}`] : []), ...lines].join('\n')}\nassistant:`;
}

/**
 * What ends a reply: the model's eos ids, and for a chat the template's end of turn (`<|im_end|>`,
 * `<|eot_id|>`): its id when it is one token, else a stop string.
 */
export function replyEnds(served: Served, chat: boolean): { eosIds: number[]; stopStrings: string[] } {
  const end = chat && served.chatTemplate ? endOfTurn(served.chatTemplate as never) : null;
  if (end === null) return { eosIds: [...served.eosIds], stopStrings: [] };
  const ids = Array.from(served.tokenizer.encode(end));
  if (ids.length === 1) return { eosIds: [...new Set([...served.eosIds, ids[0]])], stopStrings: [] };
  return { eosIds: [...served.eosIds], stopStrings: [end] };
}

/** Each tokenizer's token texts and trie for constrained decoding, built on its first constrained request. */
const vocabularies = new WeakMap<object, TokenVocabulary>();

/** The vocabulary constrained decoding masks for `served` (its end ids kept out of the text: they end a reply). */
export function tokenVocabulary(served: Served): TokenVocabulary {
  const t = served.tokenizer;
  let vocab = vocabularies.get(t);
  if (!vocab) {
    const ends = [...served.eosIds, ...replyEnds(served, true).eosIds];
    vocab = new TokenVocabulary(t.vocabSize, (ids) => t.decode(ids), t.vocabSize, ends);
    vocabularies.set(t, vocab);
  }
  return vocab;
}
