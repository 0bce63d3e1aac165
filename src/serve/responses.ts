/** OpenAI's response objects and stream chunks for /v1/completions and /v1/chat/completions. */
import type { StopReason } from '../generate/sequence.js';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usage(prompt: number, completion: number): Usage {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** OpenAI's finish_reason: 'stop' at EOS or a stop string, 'length' at max_tokens or the context's end. */
export function finishReason(r: StopReason): 'stop' | 'length' {
  return r === 'length' ? 'length' : 'stop';
}

/** The fields every response and chunk of one request share. */
export interface Envelope {
  id: string;
  created: number;
  model: string;
}

export function completion(e: Envelope, text: string, finish: string, u: Usage): object {
  return { ...e, object: 'text_completion', choices: [{ index: 0, text, logprobs: null, finish_reason: finish }], usage: u };
}

export function chatCompletion(e: Envelope, content: string, finish: string, u: Usage): object {
  return { ...e, object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: finish }], usage: u };
}

/** A stream chunk with new text (finish null) or the last one (finish set, text ''). */
export function completionChunk(e: Envelope, text: string, finish: string | null): object {
  return { ...e, object: 'text_completion', choices: [{ index: 0, text, logprobs: null, finish_reason: finish }] };
}

/** A chat stream chunk: the delta carries only the fields it has (clients break on nulls inside a delta). */
export function chatChunk(e: Envelope, delta: { role?: string; content?: string }, finish: string | null): object {
  return { ...e, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
}

/** stream_options.include_usage: the chunk after the last one, with no choices. */
export function usageChunk(e: Envelope, chat: boolean, u: Usage): object {
  return { ...e, object: chat ? 'chat.completion.chunk' : 'text_completion', choices: [], usage: u };
}
