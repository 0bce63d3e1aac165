/** `smolcluster serve`'s options: what it serves, where, to whom, and how many requests at once. */
import { appended, nonNegativeInt, oneOf, positiveInt, positiveNumber } from './parsers.js';
import { choice, valued } from './spec.js';
import { STAGE_OPTIONS } from './stages.js';
import { QUANT_SCHEMES } from './choices.js';

export const SERVE_OPTIONS = {
  model: valued<string>({ arg: '<src>', help: 'the model: a Hugging Face folder, a model file saved by smolcluster (--save), a run\'s folder (its newest checkpoint; a LoRA run\'s adapters on its --init), or a PEFT adapter folder (on its base_model_name_or_path)', forward: false }),
  follow: valued<string>({ arg: '<run>', help: 'serve a run\'s folder (experiments/NAME) and reload its newest checkpoint while it trains, waiting for the first (instead of --model)', forward: false }),
  followEvery: valued({ arg: '<s>', help: 'with --follow: seconds between looks for a newer checkpoint', parse: positiveNumber, default: 10, forward: false }),
  modelName: valued<string>({ arg: '<id>', help: 'the model id /v1/models lists and requests name (default: the folder or file name)', forward: false }),
  tokenizer: valued<string>({ arg: '<name|path>', help: 'tokenizer over the one found beside the model: gpt2, bytes, or a tokenizer.json', forward: false }),
  adapter: valued<string>({ arg: '<dir>', help: 'a PEFT LoRA adapter folder merged into the served model\'s weights at load (and at each --follow reload)', forward: false }),
  loraModules: valued({
    arg: '<name=dir>', help: 'serve a PEFT LoRA adapter folder unmerged over the model as NAME: /v1/models lists it and a request\'s "model": NAME runs it, beside the base (vLLM\'s --lora-modules; repeatable; cpu, one process)',
    parse: appended, repeatable: true, forward: false,
  }),
  quantize: choice(QUANT_SCHEMES, { arg: '<scheme>', help: 'hold the weight matrices quantized: q8_0, q4_0, q4_k_m, q5_k_m, mlx4, mlx8, nf4 (docs/QUANTIZE.md)', parse: oneOf(QUANT_SCHEMES), forward: false }),
  host: valued({ arg: '<host>', help: 'address to listen on; beyond loopback (e.g. 0.0.0.0) --token is required', default: '127.0.0.1', forward: false }),
  port: valued({ arg: '<n>', help: 'port (0: any free port)', parse: nonNegativeInt, default: 8000, forward: false }),
  maxBatch: valued({ arg: '<n>', help: 'requests decoded together at most (continuous batching); more wait in a queue', parse: positiveInt, default: 8, forward: false }),
  token: valued<string>({ arg: '<token>', help: 'API key clients must send as "Authorization: Bearer <token>" (default: the SMOLCLUSTER_SERVE_TOKEN variable; required beyond loopback)', forward: false }),
  queueTimeout: valued({ arg: '<s>', help: 'seconds a request may wait for a free row before it is refused with 503', parse: positiveNumber, default: 60, forward: false }),
  precision: choice(['fp32', 'bf16'], { arg: '<p>', help: 'compute precision of generation', default: 'fp32', forward: false }),
  device: valued({ arg: '<device>', help: 'cpu, or gpu (the WebGPU device)', default: 'cpu', forward: false }),
  threads: valued({ arg: '<n>', help: 'compute threads (default: SMOLCLUSTER_THREADS, else every core), as generate takes them', parse: positiveInt, forward: false }),
  ...STAGE_OPTIONS,
} as const;
