/**
 * `train --sample-every N`: what a text model writes as it trains. Every N steps the leader
 * generates a short continuation of --sample-prompt with the model as it stands (greedy unless
 * --sample-temperature; the seed from --seed and the step, so a rerun writes the same samples), and
 * hands it to the observers: printed, written to metrics.jsonl (kind "sample"), shown by the dashboard.
 */
import { makeTokenizer, type Tokenizer } from '../../data/tokenizer.js';
import { type CausalLm, generate } from '../../generate/generate.js';
import { promptIds } from '../../generate/reply.js';
import type { SampleRecord } from '../../metrics/records.js';
import type { ModelSpec } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import type { Precision } from '../../tensor/precision.js';
import { ConfigError } from '../../util/errors.js';
import type { TrainConfig } from '../run/config.js';

const DEFAULT_SAMPLE_TOKENS = 32;

export class TrainingSamples {
  private constructor(
    private readonly every: number,
    private readonly prompt: string,
    private readonly ids: number[],
    private readonly tokenizer: Tokenizer,
    private readonly maxNewTokens: number,
    private readonly temperature: number,
    private readonly seed: number,
  ) {}

  /**
   * The run's sampler, or null without --sample-every. Refused before training, by flag, where it
   * cannot sample: a model that does not write text, or one this strategy shards across ranks.
   */
  static of(config: TrainConfig, spec: ModelSpec, sharded: boolean): TrainingSamples | null {
    const every = config.sampleEvery ?? 0;
    if (every === 0) return null;
    const refuse = (why: string): ConfigError => new ConfigError('command line', '--sample-every', why);
    if (config.dataset !== 'text' || (spec.type !== 'gpt2' && spec.type !== 'llama')) {
      throw refuse(`samples need a text model that writes (gpt2 or the Llama family on --dataset text); this run trains a ${spec.type} on ${config.dataset}`);
    }
    if (sharded) throw refuse('the model is sharded across ranks by this strategy (ZeRO-3, tensor or pipeline parallel): no rank holds it whole to sample from');
    const tokenizer = makeTokenizer(config.tokenizer ?? 'gpt2');
    const prompt = config.samplePrompt ?? '';
    let ids: number[];
    try {
      ids = promptIds(tokenizer, prompt);
    } catch (e) {
      throw new ConfigError('command line', '--sample-prompt', (e as Error).message);
    }
    if (ids.length >= spec.context) throw new ConfigError('command line', '--sample-prompt', `has ${ids.length} tokens; the model has ${spec.context} positions`);
    const tokens = Math.min(config.sampleTokens ?? DEFAULT_SAMPLE_TOKENS, spec.context - ids.length);
    return new TrainingSamples(every, prompt, ids, tokenizer, tokens, config.sampleTemperature ?? 0, config.seed);
  }

  /** Whether the run samples after `step` steps (every rank knows: the others wait for the leader). */
  due(step: number): boolean {
    return step % this.every === 0;
  }

  /** The model's continuation of the prompt, now (the model's train/eval mode kept). */
  async take(model: Module, step: number, precision: Precision): Promise<SampleRecord> {
    const eos = this.tokenizer.eos;
    const result = await generate(model as unknown as CausalLm, this.ids, {
      maxNewTokens: this.maxNewTokens, temperature: this.temperature, seed: this.seed + step, precision,
      eosIds: eos === null ? [] : [eos], decode: (ids) => this.tokenizer.decode(ids.filter((id) => id !== eos)),
    });
    return { step, prompt: this.prompt, text: result.text ?? '', temperature: this.temperature };
  }
}
