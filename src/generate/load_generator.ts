/**
 * Everything generate, chat and serve need to talk to a model, loaded from what `--model` names
 * (model_source.ts): the model itself (GPT-2 or the Llama family) on its device, its tokenizer, the
 * ids that end a reply and the folder's chat template.
 *
 * The tokenizer is `tokenizer` when given, else the one the run trained with, else the folder's
 * tokenizer.json, else the one the vocabulary size implies (50,257: GPT-2's byte-pair encoding; 256:
 * bytes) — a model whose tokenizer cannot be found is refused with a hint to pass --tokenizer.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeTokenizer, type Tokenizer } from '../data/tokenizer.js';
import { tokenizerFile } from '../data/hf_tokenizer.js';
import { loadModel, readModelHeader } from '../nn/checkpoint.js';
import { hfTokenIds } from '../nn/interchange/hf_config.js';
import { loadPretrained, readHfConfig } from '../nn/interchange/hf_folder.js';
import { specFromHfConfig } from '../nn/interchange/hf_config.js';
import { loadMlxFolder, mlxQuantizationOf } from '../nn/interchange/mlx_folder.js';
import { type HalfDtype, type HeldMatrices, folderHalfDtype, loadFolderForInference } from '../nn/interchange/inference_folder.js';
import { loadSafetensorsModel } from '../nn/interchange/model_io.js';
import { isSafetensorsPath } from '../nn/interchange/safetensors.js';
import { type Gpt2Spec, type LlamaSpec, type ModelSpec, createModel } from '../nn/models/index.js';
import { withoutRandomInit } from '../tensor/init_scope.js';
import type { Module } from '../nn/module.js';
import { type AdapterWeights, loadAdapter, mergeAdapterInto, readPeftAdapter } from '../nn/lora/peft.js';
import { holdsAdaptersOnly, readCheckpointAdapter } from '../nn/lora/checkpoint_adapter.js';
import { type NamedAdapter, loadServedAdapters } from '../nn/lora/served_adapters.js';
import { loadWebGpuBackend } from '../tensor/backends/webgpu/index.js';
import type { Precision } from '../tensor/precision.js';
import { isQuantType } from '../tensor/quant/formats.js';
import { holdBf16Casts } from './model_casts.js';
import { type InferenceMemory, checkInferenceMemory } from './inference_memory.js';
import { sourceMemory, sourceSpec } from './source_memory.js';
import { availableMemory } from '../util/node_memory.js';
import { collectGarbage } from '../util/collect_garbage.js';
import { tokenizerFromGguf } from '../data/gguf_tokenizer.js';
import { type GgufFile, ggufMeta, isGgufFile, readGgufFile } from '../nn/interchange/gguf.js';
import { loadGgufModel, specFromGguf } from '../nn/interchange/gguf_llama.js';
import { type QuantScheme, quantizeModel } from '../nn/quantize_model.js';
import { repackQuantizedMatrices } from '../nn/repack_quantized.js';
import { holdWeightsInHugePages } from './weight_pages.js';
import { type ChatTemplate, ggufChatTemplate, loadChatTemplate } from './chat_template.js';
import type { CausalLm } from './generate.js';
import { type AdapterSource, ModelSourceError, type ResolvedSource, adapterPath, readJsonObject, resolveModelSource } from './model_source.js';

/** The spec of a model that generates text. */
export type CausalLmSpec = Gpt2Spec | LlamaSpec;

export interface Generator {
  model: CausalLm;
  spec: CausalLmSpec;
  tokenizer: Tokenizer;
  /** Ids that end generation: the tokenizer's end of document and the folder's eos_token_id(s). */
  eosIds: number[];
  chatTemplate: ChatTemplate | null;
  /** What `source` named. */
  source: string;
  /** The weights read: a folder, a model file, or a run's checkpoint; for LoRA adapters (a LoRA run, an adapter folder), theirs. */
  weights: string;
  /** The base model the adapters `weights` names are merged into (absent: `weights` is the whole model). */
  base?: string;
  /** The precision generation computes in (as loadGenerator was asked; default fp32). */
  precision: Precision;
  /** --quantize: the scheme and the weight matrices' bytes before (float32) and after. */
  quantized?: { scheme: QuantScheme; bytesBefore: number; bytesAfter: number };
  /** What loading was estimated to need (inference_memory.ts), and the memory available then. */
  memory?: { need: InferenceMemory; available: number };
}

export interface LoadGeneratorOptions {
  /** A tokenizer name (gpt2, bytes) or tokenizer.json path, over the one found beside the model. */
  tokenizer?: string;
  /** 'cpu' (default), or 'gpu' / 'webgpu': the WebGPU device (refused when there is none). */
  device?: string;
  /** 'bf16': matmuls and attention in bfloat16 (default fp32). */
  precision?: Precision;
  /** Weight matrices held quantized (nn/quantize_model.ts), after the adapter is merged; cpu only. */
  quantize?: QuantScheme;
  /** A PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) merged into the weights (nn/lora/peft.ts). */
  adapter?: string;
  /** PEFT adapter folders held by name beside the weights, unmerged: a sequence runs the one it names (serve's several adapters); cpu only. */
  adapters?: readonly NamedAdapter[];
  /** Positions a sequence may reach, for the KV cache's share of the estimate (default: inference_memory.ts DEFAULT_POSITIONS). */
  positions?: number;
  /** Sequences generated together (serve's --max-batch; default 1). */
  rows?: number;
  /**
   * `rows` is a ceiling, not a demand (serve's --max-batch left at its default): where that many do
   * not fit the memory available, the most that do (Ollama's parallel requests chosen the same way);
   * the estimate's `rows` says how many. Refused as before when even one does not fit.
   */
  fitRows?: boolean;
  /** Bytes this process may take (default: availableMemory(), cgroup-aware); a model that needs more is refused before its weights are read. */
  availableBytes?: number;
}

/** The --device names generation takes, and whether each means the WebGPU device. */
const ON_GPU: Readonly<Record<string, boolean>> = { cpu: false, gpu: true, webgpu: true };

/**
 * Loads the model `source` names (a Hugging Face folder, a model file this project writes, a run's
 * folder: its newest checkpoint or saved model, or LoRA adapters: a LoRA run's, a PEFT folder's, on
 * their base) with its tokenizer and chat template.
 */
export async function loadGenerator(source: string, opts: LoadGeneratorOptions = {}): Promise<Generator> {
  const generator = await loadModelAndTokenizer(source, opts);
  // What the load left for the collector goes now, not at V8's next full collection (often after
  // the generation, its young generation grown meanwhile): on a SmolLM2-135M Q4_0 file 1.4 MB of
  // array buffers and 0.8 MB of objects; `smolcluster generate`'s resident peak 2.6-4.1 MB lower,
  // the one-layer file's unmoved.
  collectGarbage();
  return generator;
}

async function loadModelAndTokenizer(source: string, opts: LoadGeneratorOptions): Promise<Generator> {
  const device = opts.device ?? 'cpu';
  const onGpu = Object.hasOwn(ON_GPU, device) ? ON_GPU[device] : undefined;
  if (onGpu === undefined) throw new ModelSourceError('device', `"${device}" is not a device generation runs on (cpu, gpu)`);
  const resolved = resolveModelSource(source);
  if (resolved.kind === 'file' && isGgufFile(resolved.path)) return loadGgufGenerator(source, resolved, opts, onGpu);
  const sourceSpecOf = sourceSpec(resolved);
  const inPlace = loadsInPlace(resolved, sourceSpecOf, opts, onGpu);
  const matrices = heldMatrices(resolved, opts);
  const halfMatrices = inPlace ? halfMatricesOf(resolved.path, matrices) : undefined;
  const memory = checkMemory(sourceSpecOf, { folder: resolved.kind === 'folder' ? resolved.path : undefined, quantize: opts.quantize }, { ...opts, halfMatrices, inPlace });
  const loaded = inPlace ? loadFolderForInference(resolved.path, { matrices, quantize: opts.quantize, spec: sourceSpecOf }) : { ...await readWeights(resolved), inHugePages: false };
  const { model, spec, inHugePages } = loaded;
  // --quantize read in place: each matrix was made into its blocks as it was read.
  const quantized = 'quantized' in loaded && loaded.quantized && opts.quantize ? { scheme: opts.quantize, ...loaded.quantized } : undefined;
  await putAdapters(source, resolved, opts, model, holdsQuantizedWeights(model));
  loadNamedAdapters(model, opts, onGpu);
  const described = describeModel(source, resolved, spec, opts);
  return { ...described, memory, ...await readyForInference(source, model, described.spec, opts, onGpu, { inHugePages, quantized }) };
}

/**
 * How a folder read in place holds its matrices (nn/interchange/inference_folder.ts): in bf16 for
 * bf16 generation, as the files hold them (BF16, F16 or F32) for fp32 generation, float32 where
 * something will write the weights (an adapter merged into them) or --quantize makes the blocks of
 * those it quantizes as it reads them (the rest float32).
 */
function heldMatrices(resolved: ResolvedSource, opts: LoadGeneratorOptions): HeldMatrices {
  if (!keepsWeightsAsRead(resolved, opts)) return 'float32';
  return opts.precision === 'bf16' ? 'bf16' : 'as-read';
}

/**
 * The 16-bit float a folder (or safetensors file) read in place holds its matrices in (the
 * estimate counts them at 2 bytes), if any: bf16 for bf16 generation; for fp32 generation a BF16 or F16 folder's own, which
 * the products widen a tile at a time.
 */
function halfMatricesOf(source: string, matrices: HeldMatrices): HalfDtype | undefined {
  if (matrices === 'float32') return undefined;
  return matrices === 'bf16' ? 'bfloat16' : folderHalfDtype(source) ?? undefined;
}

/** Nothing will write the weights: no adapter merged into them, no --quantize. */
function keepsWeightsAsRead(resolved: ResolvedSource, opts: LoadGeneratorOptions): boolean {
  return !hasAdapters(resolved, opts) && opts.quantize === undefined;
}

/** An adapter merged into the weights, or served beside them. */
function hasAdapters(resolved: ResolvedSource, opts: LoadGeneratorOptions): boolean {
  return resolved.adapter !== undefined || opts.adapter !== undefined || (opts.adapters?.length ?? 0) > 0;
}

/**
 * Whether the model is read by nn/interchange/inference_folder.ts, each weight straight into its
 * place (a float Llama-family or GPT-2 folder, or a safetensors file smolcluster saved, on the cpu;
 * under --quantize each matrix straight into its blocks), rather than whole into a float32 arena first.
 */
function loadsInPlace(resolved: ResolvedSource, spec: ModelSpec, opts: LoadGeneratorOptions, onGpu: boolean): boolean {
  const safetensors = resolved.kind === 'folder' || isSafetensorsPath(resolved.path);
  if (onGpu || !safetensors || (spec.type !== 'llama' && spec.type !== 'gpt2')) return false;
  // --quantize refuses GPT-2 by name once it is read (quantizeForGeneration).
  if (spec.type === 'gpt2' && opts.quantize !== undefined) return false;
  // --quantize with adapters: they meet the float32 weights first (merged, then quantized).
  if (opts.quantize !== undefined && hasAdapters(resolved, opts)) return false;
  return resolved.kind !== 'folder' || !mlxQuantizationOf(readHfConfig(resolved.path), join(resolved.path, 'config.json'));
}

/** The estimate of what loading will hold, refused (naming both numbers) when it exceeds the memory available. */
function checkMemory(spec: ModelSpec, from: Parameters<typeof sourceMemory>[1], opts: LoadGeneratorOptions & { halfMatrices?: HalfDtype; inPlace?: boolean }): Generator['memory'] {
  const estimate = (rows: number | undefined): ReturnType<typeof sourceMemory> =>
    sourceMemory(spec, from, { precision: opts.precision, positions: opts.positions, rows, halfMatrices: opts.halfMatrices, inPlace: opts.inPlace });
  const available = opts.availableBytes ?? availableMemory();
  let { need, fourBit } = estimate(opts.rows);
  // Fewer rows, one at a time down to one, until the estimate fits (or one does not either: refused below).
  for (let rows = (opts.rows ?? 1) - 1; opts.fitRows && need.total > available && rows >= 1; rows--) ({ need, fourBit } = estimate(rows));
  checkInferenceMemory(need, available, 'this node has', fourBit);
  return { need, available };
}

/**
 * A GGUF file's model, with the tokenizer, end ids and chat template its metadata holds (unless
 * --tokenizer names another). Its quantized tensors stay as they are: --quantize applies to a float
 * file only (re-quantizing loses what the first quantization kept).
 */
async function loadGgufGenerator(source: string, resolved: ResolvedSource, opts: LoadGeneratorOptions, onGpu: boolean): Promise<Generator> {
  let file = readGgufFile(resolved.path);
  const memory = checkMemory(specFromGguf(file), { gguf: file, f16Blocks: !onGpu, quantize: opts.quantize }, opts);
  // The tokenizer first, and then the header without its strings (a Qwen2.5 file's 303,323 tokens
  // and merges, 12 MB the tokenizer holds copies of): not kept through the weights' load.
  const described = { ...describeGguf(source, file, opts), ...(resolved.adapter ? { weights: adapterPath(resolved.adapter), base: file.path } : {}) };
  file = withoutTokenizer(file);
  // Its quantized blocks read into huge pages, not mapped: a decode streams them every token (F16 matrices kept float16 there);
  // and, there, repacked into the layout the cpu's products read fastest where it has one (Q4_0, Q8_0 and Q5_0 rows interleaved by eight on AVX512-VNNI).
  const { model, spec } = loadGgufModel(file, undefined, { hugePages: !onGpu, repack: !onGpu });
  // A GGUF file's float matrices too: F16 ones stay float16 (no floats to merge into).
  await putAdapters(source, resolved, opts, model, true);
  loadNamedAdapters(model, opts, onGpu);
  return { ...described, spec, memory, ...await readyForInference(source, model, spec, opts, onGpu) };
}

/** A header less its tokenizer's lists (`tokenizer.ggml.tokens`, `.merges`, `.token_type`, `.scores`): what the weights' load reads. */
function withoutTokenizer(file: GgufFile): GgufFile {
  const lists = new Set(['tokenizer.ggml.tokens', 'tokenizer.ggml.merges', 'tokenizer.ggml.token_type', 'tokenizer.ggml.scores']);
  return { ...file, metadata: Object.fromEntries(Object.entries(file.metadata).filter(([key]) => !lists.has(key))) };
}

/**
 * The adapter `source` is (a PEFT folder, a LoRA run) and --adapter's: merged once on the host
 * (generation then runs at the base model's speed), or `unmerged` — over quantized matrices (an
 * MLX folder's, a GGUF file's), merged into 4-bit blocks a fine-tune's small change would be
 * rounded away — and then only one.
 */
async function putAdapters(source: string, resolved: ResolvedSource, opts: LoadGeneratorOptions, model: Module, unmerged: boolean): Promise<void> {
  if (!unmerged) {
    if (resolved.adapter) await mergeAdapterInto(adapterWeights(resolved.adapter), model);
    if (opts.adapter !== undefined) await mergeAdapterInto(opts.adapter, model);
    return;
  }
  if (resolved.adapter && opts.adapter !== undefined) throw new ModelSourceError('--adapter', `${source} is LoRA adapters on a quantized model already; one adapter runs unmerged over it`);
  const adapter = resolved.adapter ? adapterWeights(resolved.adapter) : opts.adapter;
  if (adapter !== undefined) loadAdapter(adapter, model);
}

/** The A and B pairs an adapter source names (model_source.ts): a PEFT folder's, or a LoRA run's checkpoint's. */
function adapterWeights(a: AdapterSource): AdapterWeights {
  return a.kind === 'peft' ? readPeftAdapter(a.dir) : readCheckpointAdapter(a.file, a.alpha);
}

/** opts.adapters by name beside the weights (nn/lora/served_adapters.ts); each sequence names its own. */
function loadNamedAdapters(model: Module, opts: LoadGeneratorOptions, onGpu: boolean): void {
  if (!opts.adapters?.length) return;
  if (onGpu) throw new ModelSourceError('--device gpu', 'adapters served by name run on the cpu; drop --device gpu');
  if (opts.adapter !== undefined) throw new ModelSourceError('--adapter', 'give one adapter DIR (merged) or adapters by NAME=DIR (served unmerged), not both');
  loadServedAdapters(model, opts.adapters);
}

/**
 * Everything of a GGUF file's generator but its weights (a pipeline's driver: its stages load the
 * weights): the tokenizer, end ids and chat template of the file's metadata.
 */
export function describeGguf(source: string, file: GgufFile, opts: LoadGeneratorOptions = {}): Omit<Generator, 'model' | 'quantized'> {
  const tokenizer = opts.tokenizer !== undefined ? makeTokenizer(opts.tokenizer) : tokenizerFromGguf(file.path, file.metadata);
  const eos = [tokenizer.eos, ggufMeta<number>(file, 'tokenizer.ggml.eot_token_id', -1)].filter((id): id is number => id !== null && id >= 0);
  const chatTemplate = ggufChatTemplate(file, tokenizer.eos);
  return { spec: specFromGguf(file), tokenizer, eosIds: [...new Set(eos)], chatTemplate, source, weights: file.path, precision: opts.precision ?? 'fp32' };
}

/**
 * What every source shares once its weights are read: --quantize, the device, and what a model
 * loaded for inference may hold. Nothing trains it, so its weights may move into huge pages
 * (weight_pages.ts) and its bf16 casts live as long as it (model_casts.ts).
 */
async function readyForInference(source: string, model: Module, spec: CausalLmSpec, opts: LoadGeneratorOptions, onGpu: boolean, done: { inHugePages?: boolean; quantized?: Generator['quantized'] } = {}): Promise<Pick<Generator, 'model' | 'quantized'>> {
  const inHugePages = done.inHugePages ?? false;
  // A quantized file or MLX folder: its formats have cpu kernels only.
  if (onGpu && holdsQuantizedWeights(model)) throw new ModelSourceError('--device gpu', 'quantized weights run on the cpu; drop --device gpu');
  const quantized = done.quantized ?? (opts.quantize === undefined ? undefined : quantizeForGeneration(source, model, spec, opts.quantize, onGpu));
  // --quantize's blocks are the model's own: repacked where the cpu's products read a layout of their own (as a GGUF file's at its load).
  if (quantized && !onGpu) repackQuantizedMatrices(model);
  const placed = onGpu ? await placeOnGpu(model, spec) : model;
  // Loaded in place, they are there already (nn/interchange/inference_folder.ts).
  if (!inHugePages) holdWeightsInHugePages(placed);
  if ((opts.precision ?? 'fp32') === 'bf16') holdBf16Casts(placed);
  return { model: placed as unknown as CausalLm, ...(quantized ? { quantized } : {}) };
}

/** Whether a model holds weights in a quantized format (a GGUF file's, an MLX folder's, --quantize's). */
function holdsQuantizedWeights(model: Module): boolean {
  return model.namedParameters().some(([, p]) => isQuantType(p.dtype));
}

/** --quantize: the Llama family's weight matrices in the scheme's formats, on the cpu (whose backends have their kernels). */
function quantizeForGeneration(source: string, model: Module, spec: CausalLmSpec, scheme: QuantScheme, onGpu: boolean): Generator['quantized'] {
  if (onGpu) throw new ModelSourceError('--quantize', 'quantized weights run on the cpu; drop --device gpu or --quantize');
  if (spec.type !== 'llama') throw new ModelSourceError(source, `holds a ${spec.type} model; --quantize takes the Llama family (llama, qwen2, qwen3, mixtral)`);
  if (holdsQuantizedWeights(model)) throw new ModelSourceError(source, `is quantized already; --quantize ${scheme} takes a float model`);
  const { bytesBefore, bytesAfter } = quantizeModel(model, spec, scheme);
  return { scheme, bytesBefore, bytesAfter };
}

/**
 * Everything of a generator but its weights: what a pipeline's driver needs (its stages load the
 * weights, nn/layer_list.ts ranges of them), given the spec read from the source's header.
 */
export function describeModel(source: string, resolved: ResolvedSource, spec: ModelSpec, opts: LoadGeneratorOptions = {}): Omit<Generator, 'model' | 'spec'> & { spec: CausalLmSpec } {
  if (spec.type !== 'gpt2' && spec.type !== 'llama') {
    throw new ModelSourceError(source, `holds a ${spec.type} model; generation needs a causal language model (gpt2 or the Llama family)`);
  }
  const tokenizerName = opts.tokenizer ?? resolved.run?.tokenizer ?? folderTokenizer(resolved) ?? tokenizerForVocab(spec.vocabSize);
  if (tokenizerName === null) {
    throw new ModelSourceError(source, `has no tokenizer beside it and its vocabulary (${spec.vocabSize}) is not one of a named tokenizer (gpt2: 50257, bytes: 256); pass --tokenizer NAME|PATH`);
  }
  const tokenizer = makeTokenizer(tokenizerName);
  if (tokenizer.vocabSize > spec.vocabSize) {
    throw new ModelSourceError(source, `the tokenizer ${tokenizer.name} has ${tokenizer.vocabSize} token ids, more than the model's ${spec.vocabSize}: not the tokenizer it was trained with (pass --tokenizer)`);
  }
  return {
    spec, tokenizer,
    eosIds: endIds(resolved, tokenizer),
    chatTemplate: templateFor(resolved, tokenizerName),
    source, precision: opts.precision ?? 'fp32',
    ...(resolved.adapter ? { weights: adapterPath(resolved.adapter), base: resolved.path } : { weights: resolved.path }),
  };
}

async function readWeights(resolved: ResolvedSource): Promise<{ model: Module; spec: ModelSpec }> {
  if (resolved.kind === 'folder') {
    const config = readHfConfig(resolved.path);
    const file = join(resolved.path, 'config.json');
    const mlx = mlxQuantizationOf(config, file);
    if (mlx) {
      const spec = specFromHfConfig(config, file);
      return { model: loadMlxFolder(resolved.path, spec, mlx), spec };
    }
    return loadPretrained(resolved.path);
  }
  if (isSafetensorsPath(resolved.path)) return loadSafetensorsModel(resolved.path);
  // smolcluster's model file or a training checkpoint: the header holds the spec.
  const { header } = readModelHeader(resolved.path);
  if (holdsAdaptersOnly(header.params)) throw new ModelSourceError(resolved.path, 'holds LoRA adapters only (a LoRA run\'s checkpoint): give the run\'s folder as --model, which puts them on its --init');
  const spec = header.architecture as ModelSpec;
  if (typeof spec !== 'object' || spec === null || typeof spec.type !== 'string') {
    throw new ModelSourceError(resolved.path, 'has no model architecture in its header');
  }
  const model = withoutRandomInit(() => createModel(spec, 0));
  loadModel(resolved.path, model, spec);
  return { model, spec };
}

/** A Hugging Face folder's own tokenizer.json (its folder), when it has one. */
function folderTokenizer(resolved: ResolvedSource): string | null {
  // The file itself, not the folder: a folder named gpt2 or bytes is not the built-in tokenizer of that name.
  const file = join(resolved.path, 'tokenizer.json');
  return resolved.kind === 'folder' && existsSync(file) ? file : null;
}

/** The named tokenizer a vocabulary size implies (the models smolcluster trains on gpt2 or bytes). */
function tokenizerForVocab(vocabSize: number): string | null {
  if (vocabSize === 50257) return 'gpt2';
  if (vocabSize === 256) return 'bytes';
  return null;
}

/** The tokenizer's end of document and the eos_token_id(s) of config.json and generation_config.json. */
function endIds(resolved: ResolvedSource, tokenizer: Tokenizer): number[] {
  const ids = new Set<number>();
  if (tokenizer.eos !== null) ids.add(tokenizer.eos);
  if (resolved.kind === 'folder') {
    const config = readJsonObject(join(resolved.path, 'config.json'));
    const generation = readJsonObject(join(resolved.path, 'generation_config.json'));
    for (const [json, file] of [[config, 'config.json'], [generation, 'generation_config.json']] as const) {
      if (!json) continue;
      const eos = hfTokenIds(json, join(resolved.path, file)).eos;
      for (const id of Array.isArray(eos) ? eos : eos === undefined ? [] : [eos]) ids.add(id);
    }
  }
  return [...ids];
}

/** The chat template of the model's folder, else of the tokenizer's folder; null when neither has one. */
function templateFor(resolved: ResolvedSource, tokenizerName: string): ChatTemplate | null {
  const fromModel = resolved.kind === 'folder' ? loadChatTemplate(resolved.path) : null;
  if (fromModel || ['gpt2', 'bytes'].includes(tokenizerName)) return fromModel;
  return loadChatTemplate(dirname(tokenizerFile(tokenizerName)));
}

/**
 * The model on its device. Loading filled a cpu arena, which cannot move: a fresh model is placed on
 * the GPU first and the weights written through its storages (as training places a model, then loads --init).
 */
async function placeOnGpu(model: Module, spec: ModelSpec): Promise<Module> {
  const load = await loadWebGpuBackend();
  if (!load.backend) throw new ModelSourceError('--device gpu', load.reason ?? 'no WebGPU adapter');
  const placed = withoutRandomInit(() => createModel(spec, 0)).to('webgpu');
  const params = new Map(model.namedParameters());
  for (const [name, p] of placed.namedParameters()) p.storage.write(await params.get(name)!.read() as Float32Array);
  const buffers = new Map(model.namedBuffers());
  for (const [name, b] of placed.namedBufferStorages()) b.write(buffers.get(name)!);
  return placed;
}
