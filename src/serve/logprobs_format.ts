/**
 * Log-probabilities as OpenAI's two APIs write them. /v1/completions (the legacy format, which
 * lm-evaluation-harness reads): parallel lists `tokens`, `token_logprobs`, `top_logprobs` (a
 * {token: logprob} object per token holding the most likely ones and the token itself, so up to
 * logprobs + 1 entries, as OpenAI and vLLM) and `text_offset`; an echoed prompt's first token has
 * null for both. /v1/chat/completions: `content`, a list of {token, logprob, bytes, top_logprobs}.
 * A token's text is its id decoded alone; text offsets add up those texts (vLLM's way), so they
 * index the reply's text wherever each token decodes alone to its part of it.
 */
import type { PositionLogprobs } from '../generate/logprobs.js';

/** A token of a reply (or of an echoed prompt) with its log-probability; null: the prompt's first token, which has none. */
export interface ScoredToken {
  id: number;
  scores: PositionLogprobs | null;
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

/** The legacy format of `tokens`, their offsets counted from `offset` (the text already sent before them). */
export function completionLogprobs(tokens: readonly ScoredToken[], text: (id: number) => string, offset = 0): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  for (const { id, scores } of tokens) {
    const piece = text(id);
    out.tokens.push(piece);
    out.token_logprobs.push(scores?.logprob ?? null);
    out.top_logprobs.push(scores ? topObject([...scores.top, scores], text) : null);
    out.text_offset.push(offset);
    offset += piece.length;
  }
  return out;
}

/** {token: logprob} of `tokens`; where two ids decode to one text, the first (the more likely) keeps the key. */
function topObject(tokens: readonly { id: number; logprob: number }[], text: (id: number) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of tokens) {
    const key = text(t.id);
    if (!Object.hasOwn(out, key)) out[key] = t.logprob;
  }
  return out;
}

interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

/** The chat format of generated `tokens` (each has its scores). */
export function chatLogprobs(tokens: readonly PositionLogprobs[], text: (id: number) => string): { content: (ChatTokenLogprob & { top_logprobs: ChatTokenLogprob[] })[]; refusal: null } {
  const entry = (id: number, logprob: number): ChatTokenLogprob => {
    const token = text(id);
    return { token, logprob, bytes: [...Buffer.from(token, 'utf8')] };
  };
  return { content: tokens.map((t) => ({ ...entry(t.id, t.logprob), top_logprobs: t.top.map((o) => entry(o.id, o.logprob)) })), refusal: null };
}
