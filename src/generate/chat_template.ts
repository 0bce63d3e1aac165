/**
 * Chat templates: the Jinja program a model folder ships (tokenizer_config.json's `chat_template`,
 * or chat_template.jinja beside it) that turns a conversation into the exact text the model was
 * trained on. Rendered with `@huggingface/jinja`, which follows transformers' environment
 * (trim_blocks, lstrip_blocks, `raise_exception`, `strftime_now`); the template sees `messages`,
 * `add_generation_prompt` and the tokenizer's special tokens (`bos_token`, `eos_token`, ...), as
 * transformers' `apply_chat_template` passes them.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { type ChatFormat, markGenerationBlocks } from '../data/chat_tokens.js';
import { type GgufFile, ggufMeta } from '../nn/interchange/gguf.js';
import { readJsonObjectFile } from '../util/json_file.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | string;
  content: string;
}

/** The special tokens a template may name (transformers passes every one the tokenizer has). */
export interface SpecialTokens {
  bosToken?: string;
  eosToken?: string;
  unkToken?: string;
  padToken?: string;
}

export interface ChatTemplate {
  /** The Jinja source. */
  source: string;
  bosToken?: string;
  eosToken?: string;
  /** The file it came from, named in render errors (absent for chatTemplateFrom without one). */
  file?: string;
  /** `tools`: the functions' JSON schemas, passed to the template as transformers' apply_chat_template(tools=...) passes them. */
  render(messages: readonly ChatMessage[], opts?: { addGenerationPrompt?: boolean; tools?: readonly unknown[] }): string;
}

export class ChatTemplateError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'ChatTemplateError';
  }
}

const CONFIG_FILE = 'tokenizer_config.json';
const JINJA_FILE = 'chat_template.jinja';

/**
 * A template from its Jinja source; a source that does not parse is refused (naming `file`, when
 * given). The special tokens are passed to every render as transformers passes them.
 */
export function chatTemplateFrom(source: string, special: SpecialTokens = {}, file = 'chat template'): ChatTemplate {
  let template: Template;
  try {
    template = new Template(source);
  } catch (e) {
    throw new ChatTemplateError(file, `the chat template does not parse: ${(e as Error).message}`);
  }
  const tokens: Record<string, string> = {};
  if (special.bosToken !== undefined) tokens.bos_token = special.bosToken;
  if (special.eosToken !== undefined) tokens.eos_token = special.eosToken;
  if (special.unkToken !== undefined) tokens.unk_token = special.unkToken;
  if (special.padToken !== undefined) tokens.pad_token = special.padToken;
  return {
    source, bosToken: special.bosToken, eosToken: special.eosToken, file: file === 'chat template' ? undefined : file,
    render(messages, opts = {}) {
      try {
        return template.render({
          ...tokens, messages: messages.map((m) => ({ ...m })), add_generation_prompt: opts.addGenerationPrompt ?? false, ...(opts.tools ? { tools: opts.tools } : {}),
        });
      } catch (e) {
        throw new ChatTemplateError(file, `rendering the chat template failed: ${(e as Error).message}`);
      }
    },
  };
}

/**
 * The template as chat data is rendered with (data/chat_tokens.ts): its `{% generation %}` blocks,
 * where it has them, turned into marks that say which text is learned.
 */
export function chatFormatOf(template: ChatTemplate): ChatFormat {
  const marked = markGenerationBlocks(template.source);
  if (marked === null) return { renderer: template, marked: false };
  return { renderer: chatTemplateFrom(marked, { bosToken: template.bosToken, eosToken: template.eosToken }, template.file), marked: true };
}

/**
 * The chat template of a model folder (or of the folder of a tokenizer_config.json / tokenizer.json
 * path): chat_template.jinja when present (transformers prefers it), else tokenizer_config.json's
 * `chat_template` (a string, or a list of `{name, template}` of which 'default' is taken). Null when
 * the folder has neither. A malformed file or template is refused naming the file.
 */
export function loadChatTemplate(dirOrTokenizerConfig: string): ChatTemplate | null {
  const dir = existsSync(dirOrTokenizerConfig) && statSync(dirOrTokenizerConfig).isDirectory() ? dirOrTokenizerConfig : dirname(dirOrTokenizerConfig);
  const configFile = existsSync(dirOrTokenizerConfig) && !statSync(dirOrTokenizerConfig).isDirectory() && basename(dirOrTokenizerConfig) !== 'tokenizer.json'
    ? dirOrTokenizerConfig : join(dir, CONFIG_FILE);
  const config = readConfig(configFile);
  const special = specialTokens(config, join(dir, 'special_tokens_map.json'));
  const jinja = join(dir, JINJA_FILE);
  if (existsSync(jinja)) return chatTemplateFrom(readFileSync(jinja, 'utf8'), special, jinja);
  const source = templateSource(config?.chat_template, configFile);
  return source === null ? null : chatTemplateFrom(source, special, configFile);
}

function readConfig(file: string): Record<string, unknown> | null {
  return readJsonObjectFile(file, (f, why) => new ChatTemplateError(f, why));
}

/** `chat_template` as a source: a string, or the 'default' entry of a named list; null when absent. */
function templateSource(value: unknown, file: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value as { name?: unknown; template?: unknown }[];
    const entry = named.find((t) => t?.name === 'default');
    if (!entry) {
      const names = named.map((t) => JSON.stringify(t?.name)).join(', ');
      throw new ChatTemplateError(file, `chat_template is a list of named templates (${names}) without one named "default"`);
    }
    if (typeof entry.template !== 'string') throw new ChatTemplateError(file, 'chat_template\'s "default" entry has no string "template"');
    return entry.template;
  }
  throw new ChatTemplateError(file, `chat_template must be a string or a list of {name, template}, got ${typeof value}`);
}

/** The special tokens of tokenizer_config.json, else special_tokens_map.json (strings or {content}). */
function specialTokens(config: Record<string, unknown> | null, mapFile: string): SpecialTokens {
  const map = readConfig(mapFile);
  const text = (key: string): string | undefined => {
    for (const source of [config, map]) {
      const v = source?.[key];
      const s = typeof v === 'string' ? v : (v as { content?: unknown } | null | undefined)?.content;
      if (typeof s === 'string') return s;
    }
    return undefined;
  };
  return { bosToken: text('bos_token'), eosToken: text('eos_token'), unkToken: text('unk_token'), padToken: text('pad_token') };
}

/**
 * The text that ends an assistant turn in this template (`<|im_end|>`, `<|eot_id|>`, `</s>`), found
 * by rendering a probe conversation: what follows the assistant's words, up to a line break. Null
 * when the template ends a turn with nothing but whitespace.
 */
export function endOfTurn(template: ChatTemplate): string | null {
  const words = 'smolcluster-probe-reply';
  const text = template.render([{ role: 'user', content: 'probe' }, { role: 'assistant', content: words }]);
  const at = text.lastIndexOf(words);
  if (at < 0) return null;
  const end = text.slice(at + words.length).trimStart().split(/\s/)[0];
  return end === '' ? null : end;
}

/**
 * The chat template of a GGUF file's metadata (`tokenizer.chat_template`, as llama.cpp's converter
 * copies it), its bos and eos tokens by the file's ids (`eosId`: the tokenizer's), or null.
 */
export function ggufChatTemplate(file: GgufFile, eosId: number | null): ChatTemplate | null {
  const source = ggufMeta<string>(file, 'tokenizer.chat_template', '');
  if (source === '') return null;
  const tokens = ggufMeta<string[]>(file, 'tokenizer.ggml.tokens', []);
  const text = (id: number | null): string | undefined => (id === null || id < 0 ? undefined : tokens[id]);
  return chatTemplateFrom(source, { bosToken: text(ggufMeta<number>(file, 'tokenizer.ggml.bos_token_id', -1)), eosToken: text(eosId) }, `${file.path} (tokenizer.chat_template)`);
}
