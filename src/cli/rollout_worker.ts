import { Command } from 'commander';
import { resolveToken } from '../comm/token.js';
import { parseAddress } from '../comm/tcp/mesh.js';
import { ROLLOUT_WORKER_OPTIONS, type OptionValues } from '../config/options/index.js';
import { runRolloutWorker } from '../rl/remote/worker.js';
import { backend } from '../tensor/dispatch.js';
import { ConfigError } from '../util/errors.js';
import { addOptions } from './option_table.js';

type WorkerFlags = OptionValues<typeof ROLLOUT_WORKER_OPTIONS>;

/**
 * `smolcluster rollout-worker --connect HOST:PORT --model SRC [LoRA flags]`: a GRPO rollout worker
 * (docs/RL.md). `grpo --rollout-workers N` starts these itself on 127.0.0.1; on another host start
 * one by hand against the trainer's --rollout-listen address, with the trainer's SMOLCLUSTER_TOKEN.
 */
export function rolloutWorkerCommand(): Command {
  const cmd = new Command('rollout-worker').description('a GRPO rollout worker: samples completions for a `grpo --rollout-workers` trainer (docs/RL.md)');
  return addOptions(cmd, ROLLOUT_WORKER_OPTIONS).action(async (f: WorkerFlags) => {
    if (f.connect === undefined) throw new ConfigError('command line', '--connect', 'rollout-worker needs --connect HOST:PORT (the trainer\'s rollout address)');
    if (f.model === undefined) throw new ConfigError('command line', '--model', 'rollout-worker needs --model SRC, the trainer\'s');
    const { host, port } = parseAddress(f.connect);
    if (f.threads !== undefined) backend().setThreads(f.threads);
    const verbose = process.env.SMOLCLUSTER_VERBOSE === '1';
    await runRolloutWorker({
      host, port, token: resolveToken(), model: f.model, tokenizer: f.tokenizer, seed: f.seed, maxRows: f.maxBatch, precision: f.precision,
      lora: { loraRank: f.loraRank, loraAlpha: f.loraAlpha, loraDropout: f.loraDropout, loraTargets: f.loraTargets, loraBaseDtype: f.loraBaseDtype },
      dialMs: f.connectTimeout * 1000, log: verbose ? (m) => process.stderr.write(`${m}\n`) : undefined,
    });
  });
}
