/**
 * What a run's fine-tuning flags do to its model, in the two places the loop calls: before the
 * model is placed (the arena is built of what trains, so adapters are put on and parameters frozen
 * first) and after --init has loaded the base weights (an --adapter's A and B, then a base held in
 * bf16). Every rank does the same from the same seed, so replicas start equal.
 */
import { type LoraOptions, applyLora, defaultLoraTargets, freezeMatching, holdBaseInBf16, loadAdapter, readAdapterConfig } from '../../nn/lora/index.js';
import type { ModelSpec } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { type QuantScheme, isQuantScheme, quantizeModel } from '../../nn/quantize_model.js';
import { isQuantType } from '../../tensor/quant/formats.js';
import { canRun } from '../../tensor/dispatch.js';
import { supportsPrecision } from '../../tensor/precision_support.js';
import { ConfigError } from '../../util/errors.js';
import type { TrainConfig } from '../run/config.js';
import { initIsQuantized } from '../run/init_source.js';

type FineTuneConfig = Pick<TrainConfig, 'loraRank' | 'loraAlpha' | 'loraDropout' | 'loraTargets' | 'loraBaseDtype' | 'adapter' | 'freeze' | 'mergeLora' | 'seed'>;

/** Whether the run trains LoRA adapters (asked for by --lora-rank or an --adapter folder). */
export function trainsLora(config: Pick<TrainConfig, 'loraRank' | 'adapter'>): boolean {
  return config.loraRank !== undefined || config.adapter !== undefined;
}

/** The LoRA the flags describe: --lora-* over the --adapter folder's config over the defaults (r 8, alpha 2r, the family's q/v targets). */
export function loraOptionsFor(config: FineTuneConfig, spec: ModelSpec): LoraOptions {
  const folder = config.adapter !== undefined ? readAdapterConfig(config.adapter) : undefined;
  const rank = config.loraRank ?? folder?.rank ?? 8;
  return {
    rank,
    alpha: config.loraAlpha ?? folder?.alpha ?? 2 * rank,
    dropout: config.loraDropout ?? folder?.dropout ?? 0,
    targets: config.loraTargets ?? folder?.targets ?? defaultLoraTargets(spec),
    seed: config.seed,
  };
}

/** Refuses flags that mean nothing alone (a LoRA option without LoRA, --freeze with it). */
export function checkFineTuneFlags(config: FineTuneConfig): void {
  const lora = trainsLora(config);
  for (const [flag, given] of [['--lora-alpha', config.loraAlpha], ['--lora-dropout', config.loraDropout], ['--lora-targets', config.loraTargets], ['--lora-base-dtype', config.loraBaseDtype], ['--merge-lora', config.mergeLora]] as const) {
    if (given !== undefined && !lora) throw new ConfigError('command line', flag, 'applies to LoRA training: add --lora-rank r (or --adapter DIR)');
  }
  if (config.freeze !== undefined && lora) throw new ConfigError('command line', '--freeze', 'LoRA already freezes every base parameter; --freeze is for full fine-tuning');
}

/** Before placement: adapters on (every other parameter frozen), or --freeze's parameters frozen. Returns what it did, for the log. */
export function prepareFineTune(model: Module, spec: ModelSpec, config: FineTuneConfig): string | null {
  checkFineTuneFlags(config);
  if (trainsLora(config)) {
    const o = loraOptionsFor(config, spec);
    const wrapped = applyLora(model, o);
    // The --adapter's A and B now, before the model is placed or sharded (a ZeRO build records them as the parameters' values).
    if (config.adapter !== undefined) loadAdapter(config.adapter, model, config.seed);
    return `LoRA r=${o.rank} alpha=${o.alpha} on ${wrapped.length} modules (${o.targets.join(',')})`;
  }
  if (config.freeze !== undefined) return `froze ${freezeMatching(model, config.freeze).length} parameters (--freeze)`;
  return null;
}

/**
 * After --init loaded the base: the base held in bf16, or its weight matrices quantized (QLoRA),
 * when asked. A base that holds quantized matrices (a GGUF file, an MLX folder, a quantized
 * --lora-base-dtype) trains adapters only: its matrices have no gradient.
 */
export function finishFineTune(model: Module, spec: ModelSpec, config: FineTuneConfig, quantizedAlready = false): void {
  const scheme = config.loraBaseDtype;
  // A strategy that built the model over the quantized base (pipeline stages) quantized each layer as it loaded it.
  if (scheme !== undefined && isQuantScheme(scheme) && !quantizedAlready) quantizeBase(model, spec, scheme);
  refuseTrainingQuantized(model, config);
  if (scheme !== 'bf16') return;
  const device = model.arena().device;
  if (!supportsPrecision(device, 'bf16')) throw new ConfigError('command line', '--lora-base-dtype', `bf16 needs bf16 kernels, which the ${device} device has none of; hold the base in fp32 there`);
  holdBaseInBf16(model);
}

/**
 * A strategy that builds the model itself reads float weights only (ZeRO, tensor parallel), unless
 * it `takesQuantized` (pipeline stages): a quantized base is refused by flag, and over stages so is
 * --merge-lora, since no rank holds the whole base to merge into.
 */
export function refuseQuantizedBase(config: FineTuneConfig & Pick<TrainConfig, 'init'>, strategy: string, takesQuantized: boolean): void {
  const scheme = config.loraBaseDtype;
  const flag = scheme !== undefined && isQuantScheme(scheme) ? `--lora-base-dtype ${scheme}` : initIsQuantized(config.init) ? '--init' : null;
  if (!flag) return;
  if (!takesQuantized) {
    throw new ConfigError('command line', flag, `a quantized base trains in one process, with data parallelism (allreduce) or over pipeline stages (--pipeline-stages, without --zero or --tensor-parallel); the ${strategy} strategy builds the model itself from float weights, not yet over quantized ones`);
  }
  if (config.mergeLora) {
    throw new ConfigError('command line', '--merge-lora', 'each pipeline stage holds its own layers of the quantized base and no rank the whole of it: --save the adapter folder, then merge it with `smolcluster export --model BASE --adapter DIR --out merged.gguf --quantize q8_0`');
  }
}

/** A strategy that builds the model itself without the fine-tuning hook (tensor parallel) does not take adapters or frozen parameters yet: refused by flag. */
export function refuseFineTune(config: FineTuneConfig, strategy: string): void {
  const flag = trainsLora(config) ? (config.loraRank !== undefined ? '--lora-rank' : '--adapter') : config.freeze !== undefined ? '--freeze' : null;
  if (flag) throw new ConfigError('command line', flag, `the ${strategy} strategy builds and shards the model itself and does not train adapters or frozen parameters yet; use data parallelism (allreduce), --zero 1|2|3 or --pipeline-stages`);
}

/** --lora-base-dtype SCHEME: the base's weight matrices in the scheme's formats (nn/quantize_model.ts), frozen in their blocks. */
function quantizeBase(model: Module, spec: ModelSpec, scheme: QuantScheme): void {
  const flag = `--lora-base-dtype ${scheme}`;
  if (spec.type !== 'llama') throw new ConfigError('command line', flag, `quantizes the Llama family's weights (llama, qwen2, qwen3, mixtral); this model is a ${spec.type}`);
  const quantized = quantizedParameters(model);
  if (quantized.length > 0) throw new ConfigError('command line', flag, `the --init model is quantized already (${quantized[0]} is ${formatOf(model, quantized[0])}); leave --lora-base-dtype out`);
  // Asked of the kernel registry, the quantized products' home (the cpu's backends today).
  if (!canRun(model.arena().device, scheme === 'nf4' ? 'nf4' : 'q8_0')) throw new ConfigError('command line', flag, `quantized weights run where a backend has their kernels, not on ${model.arena().device}; drop --device`);
  quantizeModel(model, spec, scheme);
}

/** A run over quantized matrices trains adapters: without LoRA, only the norms would train, which no one means. */
function refuseTrainingQuantized(model: Module, config: FineTuneConfig): void {
  const quantized = quantizedParameters(model);
  if (quantized.length === 0 || trainsLora(config)) return;
  throw new ConfigError('command line', '--init', `the model holds ${quantized.length} quantized weight matrices (${quantized[0]} is ${formatOf(model, quantized[0])}), which are frozen: train LoRA adapters over them (--lora-rank r), as QLoRA does`);
}

function quantizedParameters(model: Module): string[] {
  return model.namedParameters().filter(([, p]) => isQuantType(p.dtype)).map(([n]) => n);
}

function formatOf(model: Module, name: string): string {
  return model.namedParameters().find(([n]) => n === name)![1].dtype;
}
