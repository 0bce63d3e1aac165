/**
 * Conversation: each turn is the whole conversation rendered by the model's template (with the
 * generation prompt), the reply ends at the template's end-of-turn token, /reset forgets; a model
 * without a template is refused unless plain, where the transcript ends replies at the next "User:".
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { chatTemplateFrom, endOfTurn } from '../../src/generate/chat_template.js';
import { Conversation } from '../../src/generate/conversation.js';
import { loadGenerator } from '../../src/generate/load_generator.js';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import type { ModelSpec } from '../../src/nn/models/index.js';
import { INST_TEMPLATE, SMOLLM2_TEMPLATE, writeTokenizerFolder } from './chat_template_fixtures.js';
import { randomModel } from './families.js';

const root = mkdtempSync(join(tmpdir(), 'smol-conversation-'));
after(() => rmSync(root, { recursive: true, force: true }));

const SPEC: ModelSpec = { type: 'gpt2', vocabSize: 16, context: 64, layers: 1, width: 16, heads: 2, dropout: 0 };

async function generatorWith(name: string, config: Record<string, unknown>) {
  const dir = writeTokenizerFolder(join(root, name), config);
  saveFolder(dir, randomModel(SPEC, 1), SPEC);
  return loadGenerator(dir);
}

describe('Conversation', () => {
  it('renders the whole conversation each turn and ends replies at <|im_end|>', async () => {
    const g = await generatorWith('smol', { eos_token: '<|endoftext|>', chat_template: SMOLLM2_TEMPLATE });
    const c = new Conversation(g, { system: 'Be brief.' });
    const imEnd = g.tokenizer.encode('<|im_end|>');
    assert.equal(imEnd.length, 1);
    assert.deepEqual(c.ends.eosIds, [...new Set([...g.eosIds, imEnd[0]])]);
    const first = c.ask('hello');
    const rendered = g.chatTemplate!.render([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hello' }], { addGenerationPrompt: true });
    assert.equal(rendered, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n');
    // As apply_chat_template(tokenize=True): the rendered text's ids, nothing added.
    assert.deepEqual(first, [...g.tokenizer.encode(rendered)]);
    c.answer('world');
    c.ask('hello');
    assert.deepEqual(c.messages.map((m) => m.role), ['system', 'user', 'assistant', 'user']);
    c.reset();
    assert.deepEqual(c.messages.map((m) => m.role), ['system']);
    c.ask('x');
    c.retract();
    assert.deepEqual(c.messages.map((m) => m.role), ['system']);
  });

  it('refuses a model without a template unless plain; plain ends a reply at the next "User:" line', async () => {
    const g = await generatorWith('plain', { eos_token: '<|endoftext|>' });
    assert.throws(() => new Conversation(g), /has no chat template .*--no-template/);
    const c = new Conversation(g, { plain: true, system: 'S' });
    assert.deepEqual(c.ends.stopStrings, ['\nUser:']);
    c.ask('hello');
    c.answer(' world ');
    assert.equal(c.messages.at(-1)!.content, 'world');
  });

  it('endOfTurn finds the text after the assistant\'s words: <|im_end|>, </s>', () => {
    assert.equal(endOfTurn(chatTemplateFrom(SMOLLM2_TEMPLATE)), '<|im_end|>');
    assert.equal(endOfTurn(chatTemplateFrom(INST_TEMPLATE, { bosToken: '<s>', eosToken: '</s>' })), '</s>');
    assert.equal(endOfTurn(chatTemplateFrom('{% for m in messages %}{{ m.content }}\n{% endfor %}')), null);
  });
});
