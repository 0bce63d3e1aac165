/**
 * A pipeline stage after the first (rank s of the stage cluster, s ≥ 1): takes each message of its
 * predecessor in order, runs the activations through its layers with its rows' KV caches, and
 * hands the result on — the last stage samples each row's next token with its twin of the row's
 * sequence (same prompt, options and seed: the tokens one process would choose) and sends the
 * tokens to the driver. A failure is reported to the driver, which fails the requests in flight.
 * The loop ends at the driver's 'stop', or when the driver or the predecessor is lost.
 */
import type { Transport } from '../../comm/transport.js';
import { lastLogits } from '../../generate/generate.js';
import { Sequence } from '../../generate/sequence.js';
import { Tensor } from '../../tensor/tensor.js';
import { TimeoutError } from '../../util/errors.js';
import type { StageRows } from './stage_rows.js';
import { FAILURE_TAG, PASS_TAG, type Pass, TOKENS_TAG, decodePass, encodePass, encodeTokens } from './stage_wire.js';

export interface StageWorkerOptions {
  transport: Transport;
  rows: StageRows;
  /** How long one wait for the predecessor lasts before it is posted again (an idle stage waits on). */
  idleWaitMs?: number;
}

export async function runStageWorker(o: StageWorkerOptions): Promise<void> {
  const { transport, rows } = o;
  const rank = transport.rank;
  const last = rank === transport.size - 1;
  const twins = new Map<number, Sequence>();
  let driverLost: ((e: Error) => void) | null = null;
  const lost = new Promise<never>((_, reject) => (driverLost = reject));
  lost.catch(() => {});
  const onLost = (peer: number, e: Error): void => {
    if (peer === 0) driverLost!(e);
  };
  transport.on('peerLost', onLost);
  try {
    for (;;) {
      let bytes: Uint8Array;
      try {
        bytes = await Promise.race([transport.recv(rank - 1, PASS_TAG, { timeoutMs: o.idleWaitMs ?? 60_000, op: 'pipeline stage wait' }), lost]);
      } catch (e) {
        if (e instanceof TimeoutError) continue;
        throw e;
      }
      const pass = decodePass(bytes);
      if (pass.kind === 'stop') {
        if (!last) await transport.send(rank + 1, PASS_TAG, bytes);
        return;
      }
      try {
        await handle(pass, bytes);
      } catch (e) {
        const why = `pipeline stage ${rank} (rank ${rank}): ${(e as Error).message}`;
        await transport.send(0, FAILURE_TAG, new TextEncoder().encode(why)).catch(() => {});
      }
    }
  } finally {
    transport.off('peerLost', onLost);
  }

  async function handle(pass: Pass, bytes: Uint8Array): Promise<void> {
    if (pass.kind === 'leave') {
      for (const r of pass.rows) rows.leave(r), twins.delete(r);
      if (!last) await transport.send(rank + 1, PASS_TAG, bytes);
      return;
    }
    const input = Tensor.fromHost(Float32Array.from(pass.activations!), [pass.rows.length, pass.T, pass.width]);
    const out = rows.forward(input, pass.rows);
    if (!last) {
      const width = out.shape[2];
      await transport.send(rank + 1, PASS_TAG, encodePass({ ...pass, width, activations: await out.read() as Float32Array }));
      return;
    }
    if (pass.kind === 'prefill') {
      pass.rows.forEach((r, i) => twins.set(r, new Sequence(pass.sampling![i].promptIds, { ...pass.sampling![i], maxNewTokens: Number.MAX_SAFE_INTEGER })));
    }
    const logits = await lastLogits(out);
    const tokens = pass.rows.map((r, i) => {
      const twin = twins.get(r);
      if (!twin) throw new Error(`row ${r} decodes before its prefill`);
      return twin.choose(logits[i]);
    });
    await transport.send(0, TOKENS_TAG, encodeTokens(pass.group, pass.rows, tokens));
  }
}
