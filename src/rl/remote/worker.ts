/**
 * A rollout worker (`smolcluster rollout-worker`, docs/RL.md): the policy loaded as the trainer
 * loads it (the same --model and LoRA shape), connected to the trainer, serving its messages in
 * order — weight updates (whole, or a lossless delta onto the version held: weight_delta.ts)
 * applied between requests, sampling requests decoded with continuous
 * batching (rollouts.ts: a prompt's G completions share its prefill) — and answering each request
 * with the completions' token ids, each token's log-probability at the sampling temperature and
 * the policy version that sampled them. Every message is validated (messages.ts); one that is
 * malformed drops the connection, naming the trainer, and the worker exits with that error.
 */
import { ProtocolError, SmolError } from '../../util/errors.js';
import type { Precision } from '../../tensor/precision.js';
import type { Connection } from '../../comm/tcp/connection.js';
import { type PolicyConfig, loadPolicy } from '../policy.js';
import { sampleCompletions } from '../rollouts.js';
import { dialTrainer, onMessages, rolloutSignature, sendMessage } from './link.js';
import { decodeSample, decodeWeightDelta, decodeWeights, encodeRollouts, type SampleRequest } from './messages.js';
import { applyWeightDelta } from './weight_delta.js';
import { RolloutMessage, encodeMessage } from './wire.js';

export interface RolloutWorkerOptions {
  host: string;
  port: number;
  token: string;
  model: string;
  tokenizer?: string;
  lora: Omit<PolicyConfig, 'seed'>;
  seed: number;
  maxRows?: number;
  precision?: Precision;
  /** How long to keep dialing a trainer that is not up yet (ms). */
  dialMs: number;
  log?: (message: string) => void;
}

/** Serves the trainer until it says goodbye (resolves) or the connection fails (rejects, naming the trainer). */
export async function runRolloutWorker(o: RolloutWorkerOptions): Promise<void> {
  const policy = loadPolicy(o.model, { ...o.lora, seed: o.seed }, o.tokenizer);
  const arena = policy.model.arena();
  const layout = arena.signature();
  const conn = await dialTrainer(o.host, o.port, o.token, rolloutSignature(layout, rolloutSettings(o.lora, policy.spec.vocabSize)), o.dialMs);
  const trainer = `the GRPO trainer (${conn.remote})`;
  let version = -1;
  let chain = Promise.resolve();
  let failure: Error | null = null;
  const serve = (message: RolloutMessage, payload: Uint8Array): void => {
    // Decoded at once (a bad message drops the connection here); served in arrival order.
    if (message === RolloutMessage.Weights) {
      const w = decodeWeights(payload, trainer, layout, arena.size);
      chain = chain.then(() => {
        arena.params.write(w.values);
        version = w.version;
      });
    } else if (message === RolloutMessage.WeightDelta) {
      const u = decodeWeightDelta(payload, trainer, layout, arena.size);
      // Applied in order, onto the version it names: a worker the trainer did not keep up refuses it.
      chain = chain.then(async () => {
        if (u.base !== version) throw new ProtocolError(`weight delta from ${trainer}: onto version ${u.base}, this worker holds ${version}`);
        const values = await arena.params.read();
        applyWeightDelta(values, u.delta, trainer);
        const bad = values.findIndex((v) => !Number.isFinite(v));
        if (bad >= 0) throw new ProtocolError(`weight delta from ${trainer}: value ${bad} becomes ${values[bad]}`);
        arena.params.write(values);
        version = u.version;
      }).catch((err: Error) => {
        failure = err;
        conn.destroy(err);
      });
    } else if (message === RolloutMessage.Sample) {
      const request = decodeSample(payload, trainer, policy.spec.vocabSize);
      // A request this worker cannot sample (e.g. a prompt past the model's positions) is answered
      // Failed, with the reason, and the worker serves on; only a failed send ends it.
      chain = chain.then(() => answer(conn, request, version)).catch((err: Error) => sendMessage(conn, RolloutMessage.Failed, encodeMessage({ id: request.id, message: err.message.slice(0, 2000) }))).catch((err: Error) => {
        failure = err;
        conn.destroy(err);
      });
    } else {
      throw new SmolError('PROTOCOL', `message ${message} from ${trainer} is not one a rollout worker takes`);
    }
  };
  const answer = async (c: Connection, r: SampleRequest, v: number): Promise<void> => {
    const sampled = await sampleCompletions(policy.model, r.prompts, {
      generations: r.generations, maxCompletionLength: r.maxCompletionLength, temperature: r.temperature, topP: r.topP, topK: r.topK,
      eosIds: policy.eosIds, seed: 0, seeds: r.seeds, precision: o.precision, maxRows: o.maxRows, logps: true,
    });
    const completions = sampled.completions.map((x) => ({ prompt: x.prompt, ids: x.ids, logps: x.logps!, stopReason: x.stopReason }));
    await sendMessage(c, RolloutMessage.Rollouts, encodeRollouts({ id: r.id, version: v, completions, seconds: sampled.seconds }));
    o.log?.(`rollout worker: request ${r.id}, ${completions.length} completions at policy version ${v}, ${sampled.tokens} tokens in ${sampled.seconds.toFixed(2)} s`);
  };
  const closed = new Promise<void>((resolve, reject) => {
    conn.once('closed', (err: Error | null) => (err ?? failure ? reject(failure ?? err) : resolve()));
  });
  onMessages(conn, serve, (err) => {
    failure = err;
    o.log?.(`rollout worker: refused a message from ${trainer}: ${err.message}`);
  });
  await sendMessage(conn, RolloutMessage.Hello, encodeMessage({ pid: process.pid }));
  await closed;
}

/** The settings both sides must share beyond the layout, named as their flags (a refusal names the one that differs). */
export function rolloutSettings(lora: Omit<PolicyConfig, 'seed'>, vocabSize: number): Record<string, string> {
  return {
    'vocabulary': String(vocabSize), '--lora-rank': String(lora.loraRank ?? '–'), '--lora-alpha': String(lora.loraAlpha ?? '–'),
    '--lora-targets': String(lora.loraTargets ?? '–'), '--lora-base-dtype': String(lora.loraBaseDtype ?? '–'),
  };
}
