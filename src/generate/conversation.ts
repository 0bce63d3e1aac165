/**
 * A conversation with a loaded model, turn by turn (what `chat` drives): with the model's chat
 * template, each turn renders the whole conversation (transformers' apply_chat_template with the
 * generation prompt) and the reply ends at the template's end-of-turn token; without one (plain),
 * the conversation is a transcript of "User:" / "Assistant:" lines the model continues, and the
 * reply ends where it starts the user's next line.
 */
import { type ChatMessage, endOfTurn } from './chat_template.js';
import type { Generator } from './load_generator.js';
import { type ReplyOptions, promptIds } from './reply.js';

const PLAIN_STOP = '\nUser:';

export class Conversation {
  private turns: ChatMessage[] = [];
  /** Ids and texts that end a reply, beside the model's own. */
  readonly ends: Pick<ReplyOptions, 'eosIds' | 'stopStrings'>;

  constructor(private readonly g: Generator, private readonly o: { system?: string; plain?: boolean } = {}) {
    if (!o.plain && !g.chatTemplate) {
      throw new Error(`${g.source} has no chat template (tokenizer_config.json's chat_template, or chat_template.jinja); pass --no-template to talk to it as plain text`);
    }
    this.ends = o.plain ? { eosIds: g.eosIds, stopStrings: [PLAIN_STOP] } : templateEnds(g);
  }

  get messages(): readonly ChatMessage[] {
    return [...(this.o.system === undefined ? [] : [{ role: 'system', content: this.o.system }]), ...this.turns];
  }

  /** Forgets every turn (the system message stays). */
  reset(): void {
    this.turns = [];
  }

  /** Adds the user's words; the token ids the reply continues. */
  ask(text: string): number[] {
    this.turns.push({ role: 'user', content: text });
    if (this.o.plain) return promptIds(this.g.tokenizer, this.transcript());
    const rendered = this.g.chatTemplate!.render(this.messages, { addGenerationPrompt: true });
    // As apply_chat_template(tokenize=True): the template writes any BOS itself.
    return [...this.g.tokenizer.encode(rendered)];
  }

  /** Records the model's reply to the last question. */
  answer(text: string): void {
    this.turns.push({ role: 'assistant', content: this.o.plain ? text.trim() : text });
  }

  /** Takes back the last question (its reply failed). */
  retract(): void {
    if (this.turns.at(-1)?.role === 'user') this.turns.pop();
  }

  private transcript(): string {
    const lines = this.turns.map((m) => `${m.role === 'user' ? 'User' : 'Assistant'}: ${m.content}`);
    return `${this.o.system === undefined ? '' : `${this.o.system}\n\n`}${lines.join('\n')}\nAssistant:`;
  }
}

/** The model's eos ids plus the template's end of turn: its id when it is one token, else a stop string. */
function templateEnds(g: Generator): Pick<ReplyOptions, 'eosIds' | 'stopStrings'> {
  const end = endOfTurn(g.chatTemplate!);
  if (end === null) return { eosIds: g.eosIds, stopStrings: [] };
  const ids = g.tokenizer.encode(end);
  if (ids.length === 1) return { eosIds: [...new Set([...g.eosIds, ids[0]])], stopStrings: [] };
  return { eosIds: g.eosIds, stopStrings: [end] };
}
