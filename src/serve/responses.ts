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

/** One choice of a reply or chunk: its index (OpenAI's n), text, finish reason (null mid-stream) and logprobs (null: none asked). */
export interface Choice {
  index: number;
  text: string;
  finish: string | null;
  logprobs: object | null;
  /** Chat with tools: the calls parsed from the reply (its text then what is left around them; '' and calls: content null). */
  toolCalls?: readonly object[];
}

export function completion(e: Envelope, choices: readonly Choice[], u: Usage): object {
  return { ...e, object: 'text_completion', choices: choices.map((c) => ({ index: c.index, text: c.text, logprobs: c.logprobs, finish_reason: c.finish })), usage: u };
}

export function chatCompletion(e: Envelope, choices: readonly Choice[], u: Usage): object {
  const message = (c: Choice): object => (c.toolCalls?.length ? { role: 'assistant', content: c.text === '' ? null : c.text, tool_calls: c.toolCalls } : { role: 'assistant', content: c.text });
  const choice = (c: Choice): object => ({ index: c.index, message: message(c), logprobs: c.logprobs, finish_reason: c.finish });
  return { ...e, object: 'chat.completion', choices: choices.map(choice), usage: u };
}

/** A stream chunk of one choice: new text (finish null) or the last one (finish set). */
export function completionChunk(e: Envelope, c: Choice): object {
  return { ...e, object: 'text_completion', choices: [{ index: c.index, text: c.text, logprobs: c.logprobs, finish_reason: c.finish }] };
}

/** A chat stream chunk of one choice: the delta carries only the fields it has (clients break on nulls inside a delta). */
export function chatChunk(e: Envelope, index: number, delta: { role?: string; content?: string; tool_calls?: object[] }, finish: string | null, logprobs: object | null = null): object {
  return { ...e, object: 'chat.completion.chunk', choices: [{ index, delta, logprobs, finish_reason: finish }] };
}

/** stream_options.include_usage: the chunk after the last one, with no choices. */
export function usageChunk(e: Envelope, chat: boolean, u: Usage): object {
  return { ...e, object: chat ? 'chat.completion.chunk' : 'text_completion', choices: [], usage: u };
}
