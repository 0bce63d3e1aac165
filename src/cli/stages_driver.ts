/**
 * What `generate --stages N` and `serve --stages N` share: the model described without its weights
 * (the stages load theirs; a GGUF file's tokenizer from its metadata), and the pipeline started
 * (stage processes here, or awaited from other hosts with --stage-master).
 */
import type { OptionValues, STAGE_OPTIONS } from '../config/options/index.js';
import { describeGguf, describeModel } from '../generate/load_generator.js';
import type { ReplyModel } from '../generate/reply.js';
import type { QuantScheme } from '../nn/quantize_model.js';
import { type Pipeline, startPipeline } from '../serve/stages/stage_launch.js';
import { stageSource } from '../serve/stages/stage_source.js';
import { backend } from '../tensor/dispatch.js';
import type { Precision } from '../tensor/precision.js';
import { ConfigError } from '../util/errors.js';

type StageFlags = OptionValues<typeof STAGE_OPTIONS> & {
  model?: string;
  tokenizer?: string;
  adapter?: string;
  quantize?: QuantScheme;
  device?: string;
  precision?: string;
  threads?: number;
};

export async function startStagesFromFlags(command: string, f: StageFlags, maxBatch: number): Promise<{ described: ReplyModel; pipeline: Pipeline }> {
  if (f.model === undefined) throw new ConfigError('command line', '--model', `${command} --stages needs --model SRC`);
  if (f.device !== undefined && f.device !== 'cpu') throw new ConfigError('command line', '--device', `--stages runs its stages on the cpu, not ${f.device}`);
  if (f.threads !== undefined) backend().setThreads(f.threads);
  const precision = (f.precision ?? 'fp32') as Precision;
  const source = await stageSource(f.model, { adapter: f.adapter, quantize: f.quantize });
  const opts = { tokenizer: f.tokenizer, precision };
  const described = source.gguf ? describeGguf(f.model, source.gguf, opts) : describeModel(f.model, source.resolved, source.spec, opts);
  const pipeline = await startPipeline({
    source: f.model, spec: source.spec, weights: source.weights, stages: f.stages, master: f.stageMaster, timeoutMs: f.stageTimeout * 1000,
    maxBatch, precision, threads: f.threads, log: (line) => process.stderr.write(`smolcluster: ${line}\n`),
  });
  // --quantize's line (the scheme, the matrices' bytes) as one process's loading gives it.
  return { described: { ...described, ...(source.quantized ? { quantized: source.quantized } : {}) }, pipeline };
}
