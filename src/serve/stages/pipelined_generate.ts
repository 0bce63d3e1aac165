/**
 * Generation over a pipeline of stages (pipelined_batch.ts), for `generate --stages N` and tests:
 * every prompt joins the batch, then all rows decode together (in groups down the pipe), each
 * leaving as it stops. Each result equals generate() of that prompt in one process (same options).
 */
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
    for (const s of sequences) {
      if (s.maxNewTokens === 0) results.set(s, s.result('length'));
      else settle(s, await batch.join(s));
    }
    while (batch.size > 0) for (const { sequence, token } of await batch.step()) settle(sequence, token);
  } finally {
    for (const s of sequences) batch.leave(s);
  }
  return sequences.map((s) => results.get(s)!);
}
