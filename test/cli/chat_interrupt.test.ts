/**
 * `chat` at a real terminal (a pseudo-terminal: python3's pty module runs it, relaying our pipes to
 * the terminal's master side): a Ctrl-C during a reply stops that reply, which the conversation
 * keeps as far as it went, and chat answers the next line; a Ctrl-C over a half-typed line clears
 * it; a Ctrl-C at an empty prompt leaves. Without a terminal, SIGINT does what the key does.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { saveModel } from '../../src/nn/checkpoint.js';
import type { ModelSpec } from '../../src/nn/models/index.js';
import { CLI } from '../helpers/cli.js';
import { tempDir } from '../helpers/cluster.js';
import { randomModel } from '../generate/families.js';

// Long replies (up to the context) whose bytes are random: a Ctrl-C lands mid-reply.
const SPEC: ModelSpec = { type: 'gpt2', vocabSize: 256, context: 1024, layers: 2, width: 128, heads: 4, dropout: 0 };
const PTY = 'import os, pty, sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))';
// readline's prompt: "> " then a cursor move to its end.
const PROMPT = /> (\x1b\[\d+G)?$/;

let dir = '';
before(async () => {
  dir = tempDir('chat-interrupt');
  await saveModel(join(dir, 'chat.smol'), randomModel(SPEC, 3), SPEC);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A process at a terminal: what it wrote so far (stdout and stderr, as a terminal shows them) and a way to wait for more. */
class Terminal {
  text = '';
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding('latin1').on('data', (d: string) => (this.text += d));
    child.stderr.setEncoding('latin1').on('data', (d: string) => (this.text += d));
    this.exited = new Promise((done) => child.on('close', (code) => done(code)));
  }

  type(keys: string): void {
    this.child.stdin.write(keys);
  }

  /** Where `pattern` first matches after `from` (its end), waited for up to 30 s. */
  async waitFor(pattern: RegExp, from = 0): Promise<number> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const m = pattern.exec(this.text.slice(from));
      if (m) return from + m.index + m[0].length;
      if (Date.now() > deadline) assert.fail(`no ${pattern} after position ${from} of: ${JSON.stringify(this.text.slice(-2000))}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

/** The reply summary's numbers and stop reason, at the end of `text`. */
function summary(text: string): { tokens: number; prompt: number; stop: string } {
  const m = /smolcluster: (\d+) tokens in .*; prompt (\d+) tokens in .*stop: (\w+)$/.exec(text);
  assert.ok(m, `a reply summary ends ${JSON.stringify(text.slice(-300))}`);
  return { tokens: Number(m[1]), prompt: Number(m[2]), stop: m[3] };
}

describe('Ctrl-C in chat', { timeout: 120_000 }, () => {
  it('Ctrl-C stops a reply (kept in the conversation) and chat answers the next line; it clears a typed line; at an empty prompt it leaves', async () => {
    const maxNew = 900;
    const term = new Terminal(spawn('python3', ['-c', PTY, process.execPath, CLI, 'chat', '--model', join(dir, 'chat.smol'), '--no-template',
      '--max-new-tokens', String(maxNew), '--temperature', '1', '--seed', '1'], { cwd: dir }));
    let at = await term.waitFor(PROMPT);
    term.type('hello\r');
    at = await term.waitFor(/hello\r*\n/, at);
    // A few bytes of the reply, then Ctrl-C.
    await term.waitFor(/[^]{12}/, at);
    term.type('\x03');
    at = await term.waitFor(/stop: \w+/, at);
    const first = summary(term.text.slice(0, at));
    assert.equal(first.stop, 'interrupted');
    assert.ok(first.tokens > 0 && first.tokens < maxNew, `the reply stopped early: ${first.tokens} of ${maxNew} tokens`);

    at = await term.waitFor(PROMPT, at);
    term.type('again\r');
    at = await term.waitFor(/stop: \w+/, at);
    const second = summary(term.text.slice(0, at));
    assert.equal(second.stop, 'length');
    // It runs to its limit: --max-new-tokens, or the model's positions left after a long first reply.
    assert.equal(second.tokens, Math.min(maxNew, SPEC.context - second.prompt));
    // The transcript the second reply continues holds the first reply's text (bytes: one token each).
    const withoutIt = 'User: hello\nAssistant: \nUser: again\nAssistant:'.length;
    assert.ok(second.prompt > withoutIt, `the stopped reply is in the conversation: a prompt of ${second.prompt} tokens, ${withoutIt} without it`);

    // Ctrl-C over a typed line clears it: "/reset" alone follows.
    at = await term.waitFor(PROMPT, at);
    term.type('xyz');
    at = await term.waitFor(/xyz/, at);
    term.type('\x03');
    term.type('/reset\r');
    at = await term.waitFor(/conversation cleared/, at);
    await term.waitFor(PROMPT, at);
    term.type('\x03');
    assert.equal(await term.exited, 0, term.text.slice(-500));
  });

  it('without a terminal, SIGINT stops a reply the same way, and chat reads on', async () => {
    const maxNew = 900;
    const term = new Terminal(spawn(process.execPath, [CLI, 'chat', '--model', join(dir, 'chat.smol'), '--no-template',
      '--max-new-tokens', String(maxNew), '--temperature', '1', '--seed', '1'], { cwd: dir }));
    let at = await term.waitFor(/Ctrl-C stops a reply\n/);
    term.type('hello\n');
    await term.waitFor(/[^]{12}/, at);
    term.child.kill('SIGINT');
    at = await term.waitFor(/stop: \w+/, at);
    const first = summary(term.text.slice(0, at));
    assert.equal(first.stop, 'interrupted');
    assert.ok(first.tokens < maxNew, `the reply stopped early: ${first.tokens} of ${maxNew} tokens`);
    term.type('/reset\n/exit\n');
    await term.waitFor(/conversation cleared/, at);
    assert.equal(await term.exited, 0, term.text.slice(-500));
  });
});
