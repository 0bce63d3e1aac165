/**
 * What `generate --stages N` and `serve --stages N` share: the model described without its weights
 * (the stages load theirs), and the pipeline started (stage processes here, or awaited from other
 * hosts with --stage-master).
 */
import type { OptionValues, STAGE_OPTIONS } from '../config/options/index.js';
import { describeModel } from '../generate/load_generator.js';
import type { ReplyModel } from '../generate/reply.js';
import { type Pipeline, startPipeline } from '../serve/stages/stage_launch.js';
import { stageSource } from '../serve/stages/stage_source.js';
import { backend } from '../tensor/dispatch.js';
import type { Precision } from '../tensor/precision.js';
import { ConfigError } from '../util/errors.js';

type StageFlags = OptionValues<typeof STAGE_OPTIONS> & {
  model?: string;
  tokenizer?: string;
  adapter?: string;
  device?: string;
  precision?: string;
  threads?: number;
};

export async function startStagesFromFlags(command: string, f: StageFlags, maxBatch: number): Promise<{ described: ReplyModel; pipeline: Pipeline }> {
  if (f.model === undefined) throw new ConfigError('command line', '--model', `${command} --stages needs --model SRC`);
  if (f.device !== undefined && f.device !== 'cpu') throw new ConfigError('command line', '--device', `--stages runs its stages on the cpu, not ${f.device}`);
  if (f.threads !== undefined) backend().setThreads(f.threads);
  const precision = (f.precision ?? 'fp32') as Precision;
  const { resolved, spec } = stageSource(f.model);
  const described = describeModel(f.model, resolved, spec, { tokenizer: f.tokenizer, precision });
  const pipeline = await startPipeline({
    source: f.model, spec, weights: resolved.path, adapter: f.adapter, stages: f.stages, master: f.stageMaster, timeoutMs: f.stageTimeout * 1000,
    maxBatch, precision, threads: f.threads, log: (line) => process.stderr.write(`smolcluster: ${line}\n`),
  });
  return { described, pipeline };
}
