import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { CHAT_OPTIONS, type OptionValues } from '../config/options/index.js';
import { Conversation } from '../generate/conversation.js';
import { replySummary, streamReply } from '../generate/reply.js';
import { loadFromFlags, loadedLine, samplingFrom } from './generation_flags.js';
import { addOptions } from './option_table.js';

// Commander stores --no-template as `template: false`.
type ChatFlags = OptionValues<typeof CHAT_OPTIONS> & { template?: boolean };

const HELP = 'type a message; /reset forgets the conversation, /exit (or Ctrl-D, or Ctrl-C at an empty prompt) leaves; Ctrl-C stops a reply';

/**
 * `smolcluster chat --model SRC`: an interactive conversation. Each turn is rendered with the
 * model's chat template (or, with --no-template, as a plain transcript) and the reply streams to
 * stdout; a summary of each reply goes to stderr.
 */
export function chatCommand(): Command {
  const cmd = new Command('chat')
    .description('talk to a trained model: its chat template each turn, replies streamed (docs/GENERATE.md)');
  return addOptions(cmd, CHAT_OPTIONS).action(async (f: ChatFlags) => {
    const { generator, release } = await loadFromFlags('chat', f);
    try {
      const conversation = new Conversation(generator, { system: f.system, plain: f.template === false });
      process.stderr.write(`${loadedLine(generator)}\nsmolcluster: ${HELP}\n`);
      await converse(conversation, async (ids, aborted) => {
        const reply = await streamReply(generator, ids, { ...samplingFrom(f), ...mergedEnds(conversation, f.stop), aborted }, (piece) => process.stdout.write(piece));
        process.stdout.write('\n');
        process.stderr.write(`smolcluster: ${replySummary(reply)}\n`);
        return reply.text;
      });
    } finally {
      release();
    }
  });
}

function mergedEnds(c: Conversation, stop: string[] | undefined): { eosIds?: readonly number[]; stopStrings: string[] } {
  return { eosIds: c.ends.eosIds, stopStrings: [...(c.ends.stopStrings ?? []), ...(stop ?? [])] };
}

/**
 * The read-reply loop over stdin until /exit or end of input. Ctrl-C (a terminal's, or SIGINT) stops
 * the reply being written, which the conversation keeps as far as it went (as llama.cpp's and
 * Ollama's chats do); at the prompt it clears a half-typed line, and at an empty one it leaves.
 */
async function converse(c: Conversation, reply: (ids: number[], aborted: () => boolean) => Promise<string>): Promise<void> {
  const tty = process.stdin.isTTY === true;
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: tty, prompt: '> ' });
  let generating = false;
  let stop = false;
  const interrupt = (): void => {
    if (generating) stop = true;
    else if (tty && rl.line !== '') {
      // The half-typed line dropped (end of line, then delete to its start), the prompt kept.
      rl.write(null, { ctrl: true, name: 'e' });
      rl.write(null, { ctrl: true, name: 'u' });
    } else rl.close();
  };
  rl.on('SIGINT', interrupt);
  // Ctrl-C reaches a terminal's readline as a key; without a terminal it is the signal.
  process.on('SIGINT', interrupt);
  rl.on('close', () => process.off('SIGINT', interrupt));
  if (tty) rl.prompt();
  for await (const line of rl) {
    const text = line.trim();
    if (text === '/exit' || text === '/quit') break;
    if (text === '/reset') {
      c.reset();
      process.stderr.write('smolcluster: conversation cleared\n');
    } else if (text !== '') {
      await turn(c, text, async (ids) => {
        generating = true;
        stop = false;
        try {
          return await reply(ids, () => stop);
        } finally {
          generating = false;
        }
      });
    }
    if (tty) rl.prompt();
  }
  rl.close();
}

async function turn(c: Conversation, text: string, reply: (ids: number[]) => Promise<string>): Promise<void> {
  try {
    c.answer(await reply(c.ask(text)));
  } catch (e) {
    c.retract();
    process.stderr.write(`smolcluster: error: ${(e as Error).message}${/positions/.test((e as Error).message) ? ' (/reset starts over)' : ''}\n`);
  }
}
