/**
 * What the server needs of a loaded model (gen-cli's Generator has it all): the model, its
 * tokenizer, the ids that end a reply, its context, and its chat template when it has one. Without
 * a chat template, chat messages are laid out as plain "role: content" lines (documented in
 * docs/SERVE.md): a model trained here on plain text has none.
 */
import type { CausalLm } from '../generate/generate.js';
import type { ChatMessage } from './request.js';

export interface ServedModel {
  /** The name /v1/models lists and requests must name. */
  id: string;
  model: CausalLm;
  tokenizer: { readonly vocabSize: number; encode(text: string): ArrayLike<number>; decode(ids: ArrayLike<number>): string };
  eosIds: readonly number[];
  /** The longest sequence (prompt + reply) the model takes. */
  context: number;
  chatTemplate: { render(messages: readonly ChatMessage[], opts?: { addGenerationPrompt?: boolean }): string } | null;
}

/** The prompt text of a chat: the model's template, or "role: content" lines ending with "assistant:". */
export function chatPrompt(served: ServedModel, messages: readonly ChatMessage[]): string {
  if (served.chatTemplate) return served.chatTemplate.render(messages, { addGenerationPrompt: true });
  return `${messages.map((m) => `${m.role}: ${m.content}`).join('\n')}\nassistant:`;
}
