/**
 * Chat templates rendered with @huggingface/jinja equal transformers' apply_chat_template on the same
 * folders (SmolLM2's, Qwen2.5's and a Llama-2-style template naming the special tokens; one Python
 * process for every case), and how a folder's template is found or refused.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { type ChatMessage, chatTemplateFrom, loadChatTemplate } from '../../src/generate/chat_template.js';
import { PYTHON, SKIP } from '../nn/interchange/hf_transformers.js';
import { INST_TEMPLATE, QWEN25_TEMPLATE, SMOLLM2_TEMPLATE, TOOL_CONVERSATION, writeTokenizerFolder } from './chat_template_fixtures.js';
import { runReference } from '../helpers/python_reference.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/generate/hf_chat_template.py');
const root = mkdtempSync(join(tmpdir(), 'smol-chat-template-'));
after(() => rmSync(root, { recursive: true, force: true }));

const IM = { bos_token: '<|im_start|>', eos_token: '<|im_end|>', unk_token: '<|endoftext|>', pad_token: '<|im_end|>' };
const FOLDERS = {
  smollm2: writeTokenizerFolder(join(root, 'smollm2'), { ...IM, chat_template: SMOLLM2_TEMPLATE }),
  qwen25: writeTokenizerFolder(join(root, 'qwen25'), { bos_token: null, eos_token: '<|im_end|>', pad_token: '<|endoftext|>', chat_template: QWEN25_TEMPLATE }),
  // A named list, as some folders ship it: 'default' is the one rendered.
  inst: writeTokenizerFolder(join(root, 'inst'), {
    bos_token: { __type: 'AddedToken', content: '<s>', lstrip: false, normalized: false, rstrip: false, single_word: false }, eos_token: '</s>', unk_token: '<|endoftext|>',
    chat_template: [{ name: 'tool_use', template: '{{ raise_exception("not this one") }}' }, { name: 'default', template: INST_TEMPLATE }],
  }),
};

const CONVERSATIONS: ChatMessage[][] = [
  [{ role: 'user', content: 'Hello!' }],
  [{ role: 'system', content: 'Answer in one word.' }, { role: 'user', content: 'Sky colour?' }, { role: 'assistant', content: 'Blue.' }, { role: 'user', content: 'Grass?' }],
  [{ role: 'user', content: '  Multi\nline, ünïcödé 日本語 🙂  ' }, { role: 'assistant', content: ' Sure:\n- one\n- two ' }, { role: 'user', content: 'Again' }],
];

describe('chat templates render as transformers\' apply_chat_template', { skip: SKIP }, () => {
  it('SmolLM2, Qwen2.5 and a special-token template, with and without the generation prompt', () => {
    const cases = Object.entries(FOLDERS).flatMap(([name, dir]) => CONVERSATIONS.flatMap((messages) => [false, true].map((gen) => ({
      name, dir, messages: name === 'inst' ? messages.filter((m) => m.role !== 'system') : messages, add_generation_prompt: gen,
    }))));
    const file = join(root, 'cases.json');
    writeFileSync(file, JSON.stringify(cases));
    const r = runReference({ python: PYTHON!, args: [SCRIPT, file], root, timeout: 120_000 });
    if (r.status !== 0) throw new Error(`hf_chat_template.py failed (${r.status}): ${r.stderr}`);
    const theirs = JSON.parse(r.stdout.trim().split('\n').pop()!) as string[];
    assert.equal(theirs.length, cases.length);
    cases.forEach((c, i) => {
      const ours = loadChatTemplate(c.dir)!.render(c.messages, { addGenerationPrompt: c.add_generation_prompt });
      assert.equal(ours, theirs[i], `${c.name}, ${c.messages.length} messages, add_generation_prompt ${c.add_generation_prompt}`);
    });
    // The reference did render something of substance (the default system prompt, the special tokens).
    assert.match(theirs[0], /named SmolLM/);
    assert.match(theirs.at(-1)!, /^<s>\[INST\] Multi/);
  });
});

describe('chat templates render tools and tool calls as transformers\' apply_chat_template(tools=...)', { skip: SKIP }, () => {
  it('Qwen2.5: the tools in the system prompt, the call in <tool_call>, the result as a tool response', () => {
    const cases = [false, true].map((gen) => ({ dir: FOLDERS.qwen25, messages: TOOL_CONVERSATION.messages.slice(0, gen ? 3 : 4), tools: TOOL_CONVERSATION.tools, add_generation_prompt: gen }));
    const file = join(root, 'tool-cases.json');
    writeFileSync(file, JSON.stringify(cases));
    const r = runReference({ python: PYTHON!, args: [SCRIPT, file], root, timeout: 120_000 });
    if (r.status !== 0) throw new Error(`hf_chat_template.py failed (${r.status}): ${r.stderr}`);
    const theirs = JSON.parse(r.stdout.trim().split('\n').pop()!) as string[];
    cases.forEach((c, i) => assert.equal(loadChatTemplate(c.dir)!.render(c.messages, { addGenerationPrompt: c.add_generation_prompt, tools: c.tools }), theirs[i]));
    assert.match(theirs[0], /<tools>[\s\S]*get_weather[\s\S]*<tool_call>\n\{"name": "get_weather", "arguments": \{"city": "Lima"\}\}\n<\/tool_call>[\s\S]*<tool_response>/);
  });
});

describe('loadChatTemplate', () => {
  it('reads the special tokens (strings or {content}) and a tokenizer_config.json path as well as its folder', () => {
    const t = loadChatTemplate(join(FOLDERS.inst, 'tokenizer_config.json'))!;
    assert.equal(t.bosToken, '<s>');
    assert.equal(t.eosToken, '</s>');
    assert.equal(t.render([{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }]), '<s>[INST] hi [/INST] yo </s>');
  });

  it('prefers chat_template.jinja beside tokenizer_config.json, as transformers does', () => {
    const dir = writeTokenizerFolder(join(root, 'jinja'), { ...IM, chat_template: SMOLLM2_TEMPLATE });
    writeFileSync(join(dir, 'chat_template.jinja'), '{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{{ eos_token }}');
    assert.equal(loadChatTemplate(dir)!.render([{ role: 'user', content: 'x' }]), '<user>x<|im_end|>');
  });

  it('is null for a folder without a template, or without a tokenizer_config.json at all', () => {
    assert.equal(loadChatTemplate(writeTokenizerFolder(join(root, 'plain'), { eos_token: '</s>' })), null);
    const empty = join(root, 'empty');
    mkdirSync(empty);
    assert.equal(loadChatTemplate(empty), null);
  });

  it('refuses a template that does not parse, naming the file', () => {
    const dir = writeTokenizerFolder(join(root, 'broken'), { chat_template: '{% for m in messages %}{{ m.content }' });
    assert.throws(() => loadChatTemplate(dir), (e: Error) => e.message.startsWith(join(dir, 'tokenizer_config.json')) && /does not parse/.test(e.message));
  });

  it('refuses bad JSON, a list without "default" and a template of the wrong type, naming the file', () => {
    const dir = join(root, 'bad');
    mkdirSync(dir);
    const file = join(dir, 'tokenizer_config.json');
    for (const [text, why] of [
      ['{ not json', /is not valid JSON/],
      [JSON.stringify({ chat_template: [{ name: 'rag', template: 'x' }] }), /without one named "default"/],
      [JSON.stringify({ chat_template: 42 }), /must be a string or a list/],
    ] as const) {
      writeFileSync(file, text);
      assert.throws(() => loadChatTemplate(dir), (e: Error) => e.message.startsWith(file) && why.test(e.message));
    }
  });

  it('names the file when the template raises while rendering', () => {
    const t = loadChatTemplate(FOLDERS.inst)!;
    assert.throws(() => t.render([{ role: 'assistant', content: 'first' }]), (e: Error) => e.message.startsWith(join(FOLDERS.inst, 'tokenizer_config.json')) && /must alternate/.test(e.message));
  });

  it('chatTemplateFrom renders a source with the given special tokens', () => {
    const t = chatTemplateFrom('{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}>{% endif %}', { bosToken: 'B' });
    assert.equal(t.render([{ role: 'user', content: 'q' }], { addGenerationPrompt: true }), 'Bq>');
    assert.throws(() => chatTemplateFrom('{% if %}'), /chat template: the chat template does not parse/);
  });
});
