/**
 * Generation over a pipeline of stages (pipelined_batch.ts), for `generate --stages N` and tests:
 * the prompts join the batch (those of one length prefilled together), then all rows decode together (in groups down the pipe), each
 * leaving as it stops. Each result equals generate() of that prompt in one process (same options).
 */
import { byPromptLength } from '../../generate/batch.js';
import type { GenerateOptions } from '../../generate/generate.js';
import { type GenerateResult, Sequence, type SequenceOptions } from '../../generate/sequence.js';
import type { PipelinedBatch } from './pipelined_batch.js';

export async function generateAcross(batch: PipelinedBatch, prompts: readonly (readonly number[])[], options: SequenceOptions = {}, onToken?: (prompt: number, id: number) => void): Promise<GenerateResult[]> {
  const sequences = prompts.map((p) => new Sequence(p, options));
  const results = new Map<Sequence, GenerateResult>();
  const settle = (s: Sequence, token: number): void => {
    onToken?.(sequences.indexOf(s), token);
    const reason = s.stopped();
    if (!reason) return;
    results.set(s, s.result(reason));
    batch.leave(s);
  };
  try {
    for (const s of sequences) if (s.maxNewTokens === 0) results.set(s, s.result('length'));
    for (const group of byPromptLength(sequences.filter((s) => s.maxNewTokens > 0))) {
      const tokens = await batch.joinAll(group);
      group.forEach((s, i) => settle(s, tokens[i]));
    }
    while (batch.size > 0) for (const { sequence, token } of await batch.step()) settle(sequence, token);
  } finally {
    for (const s of sequences) batch.leave(s);
  }
  return sequences.map((s) => results.get(s)!);
}

/** One prompt's tokens through the pipeline as they come (generate's token source, reply.ts): the row leaves at the end or at a break. */
export async function* pipelinedStream(batch: PipelinedBatch, prompt: readonly number[], options: GenerateOptions): AsyncGenerator<number, GenerateResult> {
  const s = new Sequence(prompt, options);
  if (s.maxNewTokens === 0) return s.result('length');
  try {
    let token = await batch.join(s);
    for (;;) {
      yield token;
      if (options.onToken?.(token) === false) return s.result('callback');
      const stop = s.stopped();
      if (stop) return s.result(stop);
      [{ token }] = await batch.step();
    }
  } finally {
    batch.leave(s);
  }
}
