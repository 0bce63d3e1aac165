/**
 * The chat template a chat dataset is rendered with (data/chat.ts): the one beside the run's
 * --tokenizer (a tokenizer.json or the model folder holding it, or a GGUF file's metadata), its `{% generation %}` blocks, where
 * it has them, turned into marks that say which text is learned (data/chat_tokens.ts).
 */
import type { ChatFormat } from '../../data/chat_tokens.js';
import { tokenizerFile } from '../../data/hf_tokenizer.js';
import { isNamedTokenizer, makeTokenizer } from '../../data/tokenizer.js';
import { chatFormatOf, ggufChatTemplate, loadChatTemplate } from '../../generate/chat_template.js';
import { ggufHeaderRead, isGgufFile } from '../../nn/interchange/gguf.js';

/** Null for a named tokenizer (gpt2, bytes) or a folder without a template. */
export function chatFormatFor(tokenizer: string | undefined): ChatFormat | null {
  if (tokenizer === undefined || isNamedTokenizer(tokenizer)) return null;
  // Through tokenizerFile, as the tokenizer itself is found: an npm:PACKAGE/PATH reaches the template beside it too.
  const template = isGgufFile(tokenizer)
    ? ggufChatTemplate(ggufHeaderRead(tokenizer), makeTokenizer(tokenizer).eos)
    : loadChatTemplate(tokenizerFile(tokenizer));
  return template ? chatFormatOf(template) : null;
}
