import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chatWindows, loadChat } from '../../src/data/chat.js';
import { type ChatExample, looksLikeChat, readChatExamples } from '../../src/data/chat_examples.js';
import { type ChatFormat, chatTokens, markGenerationBlocks } from '../../src/data/chat_tokens.js';
import { IGNORE_INDEX } from '../../src/data/dataset.js';
import { loadDataset } from '../../src/data/load.js';
import { makeTokenizer } from '../../src/data/tokenizer.js';
import { chatTemplateFrom } from '../../src/generate/chat_template.js';
import { tempDir } from '../helpers/cluster.js';
import { QWEN25_TEMPLATE, SMOLLM2_TEMPLATE, TOOL_CONVERSATION } from '../generate/chat_template_fixtures.js';
import { CHATML, CHATML_GENERATION } from './chat_fixtures.js';

// UTF-8 bytes as tokens: every span boundary is a token boundary, and decoding is exact.
const bytes = makeTokenizer('bytes');
const marked = (source: string): ChatFormat => ({ renderer: chatTemplateFrom(markGenerationBlocks(source)!), marked: true });
const plain = (source: string): ChatFormat => ({ renderer: chatTemplateFrom(source), marked: false });
/** The learned text of an example: the decoded tokens whose mask is 1, each run of them one string. */
function learnedText(example: ChatExample, format: ChatFormat | null): string[] {
  const { ids, learned } = chatTokens(example, format, bytes, 'test');
  const runs: string[] = [];
  let run: number[] = [];
  ids.forEach((id, i) => {
    if (learned[i]) run.push(id);
    else if (run.length) runs.push(bytes.decode(run)), (run = []);
  });
  if (run.length) runs.push(bytes.decode(run));
  return runs;
}

const TALK: ChatExample = { messages: [
  { role: 'system', content: 'Be terse.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello.' },
  { role: 'user', content: '2+2?' }, { role: 'assistant', content: 'Four.' },
] };

let dir = '';
before(() => {
  dir = tempDir('chat');
});
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, lines: unknown[]): string => {
  const path = join(dir, name);
  writeFileSync(path, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n'));
  return path;
};

describe('chat examples (JSONL)', () => {
  it('reads messages, conversational and plain prompt/completion; finds chat files by their first record', () => {
    const path = file('mixed.jsonl', [TALK, '', { prompt: [{ role: 'user', content: 'a' }], completion: [{ role: 'assistant', content: 'b' }] }, { prompt: 'p', completion: 'c' }]);
    const examples = readChatExamples(path);
    assert.equal(examples.length, 3);
    assert.deepEqual(examples[2], { prompt: 'p', completion: 'c' });
    assert.equal(looksLikeChat(path), true);
    assert.equal(looksLikeChat(file('text.jsonl', [{ text: 'a document' }])), false);
    assert.equal(looksLikeChat(join(dir, 'absent.jsonl')), false);
  });
  it('refuses a bad line naming the file and line', () => {
    assert.throws(() => readChatExamples(file('a.jsonl', [TALK, '{not json'])), /a\.jsonl: line 2: is not JSON/);
    assert.throws(() => readChatExamples(file('b.jsonl', [{ text: 'x' }])), /b\.jsonl: line 1: has neither "messages" nor "prompt" and "completion"/);
    assert.throws(() => readChatExamples(file('c.jsonl', [{ messages: [{ role: 'user' }] }])), /c\.jsonl: line 1: messages\[0\] must be \{"role": string, "content": string\}/);
    assert.throws(() => readChatExamples(file('d.jsonl', [{ prompt: 'p', completion: [] }])), /d\.jsonl: line 1: "prompt" and "completion" must both be strings or both be lists/);
    assert.throws(() => readChatExamples(file('e.jsonl', [''])), /e\.jsonl: holds no chat example/);
  });
});

describe('chat tokens: what is learned', () => {
  it('{% generation %} blocks mark the assistant turns (content and end of turn)', () => {
    assert.deepEqual(learnedText(TALK, marked(CHATML_GENERATION)), ['Hello.<|im_end|>\n', 'Four.<|im_end|>\n']);
  });
  it('a template without blocks: what each assistant message adds after the generation prompt, the same as the blocks give', () => {
    const { ids, learned } = chatTokens(TALK, plain(CHATML), bytes, 'test');
    const withBlocks = chatTokens(TALK, marked(CHATML_GENERATION), bytes, 'test');
    assert.deepEqual(ids, withBlocks.ids);
    assert.deepEqual(learned, withBlocks.learned);
    // SmolLM2's template adds a default system prompt: never learned
    const smol = learnedText({ messages: TALK.messages.slice(1) }, plain(SMOLLM2_TEMPLATE));
    assert.deepEqual(smol, ['Hello.<|im_end|>\n', 'Four.<|im_end|>\n']);
  });
  it('generation tags follow trim_blocks / lstrip_blocks: the newline after a tag and the indent before it go', () => {
    const source = "{% for m in messages %}{{ m.role }}:\n  {% generation %}\n{{ m.content }}{% endgeneration %}\n|{% endfor %}";
    assert.equal(markGenerationBlocks('{{ messages[0].content }}'), null);
    const text = chatTemplateFrom(markGenerationBlocks(source)!).render([{ role: 'assistant', content: 'x' }]);
    assert.equal(text, 'assistant:\n\uE000x\uE001|');
  });
  it('tool calls: the assistant\'s call and its answer are learned, the tool\'s result and the tools\' schemas are not', () => {
    const path = file('tools.jsonl', [{ ...TOOL_CONVERSATION, messages: TOOL_CONVERSATION.messages.map((m) => (m.tool_calls ? { ...m, content: null } : m)) }]);
    const [example] = readChatExamples(path);
    assert.deepEqual('messages' in example && example.messages[1].content, '', 'a call\'s null content reads as empty');
    const learned = learnedText(example, plain(QWEN25_TEMPLATE));
    assert.deepEqual(learned, [
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lima"}}\n</tool_call><|im_end|>\n',
      'Grey and 17 °C.<|im_end|>\n',
    ]);
    assert.throws(() => readChatExamples(file('bad-tools.jsonl', [{ messages: [{ role: 'user', content: 'x', tool_calls: [{}] }] }])), /messages\[0\]\.tool_calls must be a non-empty list, on an assistant message/);
    assert.throws(() => readChatExamples(file('bad-schema.jsonl', [{ ...TOOL_CONVERSATION, tools: 'get_weather' }])), /"tools" must be a list of function schemas/);
  });
  it('conversational prompt/completion learns what follows the prompt; plain prompt/completion its completion', () => {
    const pc: ChatExample = { prompt: [{ role: 'user', content: 'Hi' }], completion: [{ role: 'assistant', content: 'Yo.' }] };
    assert.deepEqual(learnedText(pc, plain(CHATML)), ['Yo.<|im_end|>\n']);
    assert.deepEqual(learnedText(pc, marked(CHATML_GENERATION)), ['Yo.<|im_end|>\n']);
    assert.deepEqual(learnedText({ prompt: 'Q: 1+1\nA:', completion: ' 2' }, null), [' 2']);
  });
  it('refuses what it cannot learn from, naming the example', () => {
    assert.throws(() => chatTokens({ messages: [{ role: 'user', content: 'hi' }] }, plain(CHATML), bytes, 'f.jsonl: example 3'), /f\.jsonl: example 3: has no assistant message/);
    assert.throws(() => chatTokens(TALK, null, bytes, 'f.jsonl: example 1'), /f\.jsonl: example 1: is a conversation, and the tokenizer has no chat template/);
    // a template that renders the final assistant turn unlike the same turn mid-conversation
    const odd = "{% for m in messages %}{{ m.content }}{% if loop.last %}!{% endif %}|{% endfor %}";
    assert.throws(() => chatTokens(TALK, plain(odd), bytes, 'x'), /x: the chat template does not render assistant message 2 as an extension/);
    const open = "{% for m in messages %}{% generation %}{{ m.content }}{% endfor %}";
    assert.throws(() => chatTokens(TALK, marked(open), bytes, 'y'), /y: the chat template's \{% generation %\} blocks are unbalanced/);
  });
});

describe('chat windows', () => {
  it('one example per window: ids then pads; label t is the next token where it is learned, -100 elsewhere; long ones cut', () => {
    const examples = [
      { ids: Int32Array.of(5, 6, 7, 8), learned: Uint8Array.of(0, 0, 1, 1) },
      { ids: Int32Array.of(1, 2, 3, 4, 9, 9, 9), learned: Uint8Array.of(0, 1, 1, 1, 1, 1, 1) },
    ];
    const set = chatWindows(examples, 5, 0, 10, 'w');
    const X = IGNORE_INDEX;
    assert.deepEqual(Array.from(set.inputs), [5, 6, 7, 8, 0, 1, 2, 3, 4, 9]);
    assert.deepEqual(Array.from(set.labels), [X, 7, 8, X, X, 2, 3, 4, 9, X]);
    assert.equal(set.task, 'language-model');
  });
  it('loadChat: the last examples validate (or --val-file); the window fits the longest example unless --context is given', () => {
    const path = file('chat.jsonl', [TALK, { messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] }, { prompt: [{ role: 'user', content: 'c' }], completion: [{ role: 'assistant', content: 'd' }] }]);
    const data = loadChat({ file: path, tokenizer: bytes, format: marked(CHATML_GENERATION), validationFraction: 0.34 });
    assert.deepEqual(data.documents, { train: 2, test: 1 });
    const longest = chatTokens(TALK, marked(CHATML_GENERATION), bytes, '').ids.length;
    assert.deepEqual(data.train.inputShape, [longest]);
    assert.equal(data.truncated, 0);
    assert.equal(data.learnedTokens, 'Hello.<|im_end|>\nFour.<|im_end|>\nb<|im_end|>\n'.length);
    const cut = loadChat({ file: path, tokenizer: bytes, format: marked(CHATML_GENERATION), contextLength: 16, validationFile: path });
    assert.equal(cut.truncated, 6); // each of the 3 in both splits
    assert.throws(() => loadChat({ file: file('one.jsonl', [TALK]), tokenizer: bytes, format: plain(CHATML) }), /one\.jsonl: has 1 example; a validation split needs at least 2/);
  });
  it('--dataset text reads a chat JSONL as chat (by its records or --chat), with the tokenizer\'s template', () => {
    const path = file('auto.jsonl', [TALK, TALK]);
    const req = { name: 'text' as const, seed: 1, tokenTask: 'language-model' as const, dataFile: path, tokenizer: 'bytes', chatFormat: () => marked(CHATML_GENERATION) };
    const { train } = loadDataset(req);
    assert.equal(train.task, 'language-model');
    assert.ok('labels' in train && train.labels.includes(IGNORE_INDEX));
    assert.throws(() => loadDataset({ ...req, tokenTask: 'masked-lm' }), /--chat: chat data trains a next-token model/);
  });
});
