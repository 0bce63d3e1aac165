/** Options of one run's processes: where results go, engines, threads, deadlines, checkpoints. */
import { COMM_BACKENDS, DEVICE_CHOICES, PRECISION_CHOICES, SAVE_DTYPES } from './choices.js';
import { GGUF_SCHEMES } from '../../nn/quantize_model.js';
import { appended, backendFlag, nonNegativeInt, oneOf, positiveInt, positiveNumber } from './parsers.js';
import { InvalidArgumentError } from 'commander';
import { parseByteSize } from '../../nn/interchange/hf_shards.js';
import { choice, toggle, valued } from './spec.js';

/** --save-shard-size: "5GB", "500MB" or bytes. */
function shardSize(text: string): number {
  try {
    return parseByteSize(text);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

export const PROCESS_OPTIONS = {
  fault: valued({ arg: '<spec>', help: 'inject a fault, e.g. slow:rank=1:ms=50 (repeatable; docs/VALIDATION.md; env SMOLCLUSTER_FAULT)', parse: appended, repeatable: true, forward: true }),
  name: valued<string>({ arg: '<name>', help: 'experiment name: results go to <experiments-dir>/<name>/ (default: generated)', forward: true }),
  experimentsDir: valued({ arg: '<dir>', help: 'where experiment folders are written', default: 'experiments', forward: true }),
  overwrite: toggle({ help: 'replace the run already in <experiments-dir>/<name>/ (without it, an existing --name is refused unless --resume continues it)', forward: true }),
  output: valued<string>({ arg: '<file>', help: 'also write the run summary (result.json) here', forward: true }),
  save: valued<string>({ arg: '<file>', help: 'save the trained model here: a folder (a name without extension, or ending in /) gets a Hugging Face model folder (config.json, model.safetensors, the --init folder\'s tokenizer files) that transformers loads; x.safetensors writes safetensors under PyTorch / Hugging Face names; x.gguf a GGUF file for llama.cpp, Ollama and serve (the Llama family; --save-quantize); other names smolcluster\'s own format (docs/CHECKPOINT.md)', forward: true }),
  saveShardSize: valued({ arg: '<size>', help: '--save DIR: shard the weights into files of at most this size, with model.safetensors.index.json (e.g. 500MB; default 5GB, as transformers)', parse: shardSize, forward: true }),
  saveDtype: choice(SAVE_DTYPES, {
    arg: '<dtype>', help: 'the dtype --save x.safetensors or --save DIR writes weights in: fp32, bf16 or f16 (rounded to nearest even; default fp32). Checkpoints always keep fp32', parse: oneOf(SAVE_DTYPES), forward: true,
  }),
  saveQuantize: choice(GGUF_SCHEMES, {
    arg: '<scheme>', help: '--save X.gguf: the matrices\' formats (q8_0, q4_0, q4_k_m, q5_k_m: llama.cpp\'s mixes; default float32). A LoRA merge rounded to 4 bits can lose the fine-tune: the run says how much of it each format keeps', parse: oneOf(GGUF_SCHEMES), forward: true,
  }),
  threads: valued({ arg: '<n>', help: 'compute threads per process (default: SMOLCLUSTER_THREADS, else the cores divided among local workers, or 1 where a start-up calibration finds more no faster)', parse: positiveInt, forward: true }),
  backend: valued({
    arg: '<name>', help: 'tensor backend native or js (default: native if built; env SMOLCLUSTER_BACKEND); gloo (torch.distributed\'s spelling of a communication backend) is accepted and means --comm-backend auto, nccl is refused (docs/LAUNCH.md)',
    parse: backendFlag, forward: true,
  }),
  precision: choice(PRECISION_CHOICES, {
    arg: '<name>', help: 'compute precision: fp32, bf16 (matmul, convolution and attention in bfloat16 with fp32 accumulation; fp32 master weights and optimizer) or auto (bf16 where the CPU has bf16 instructions and a start-up measurement finds it faster; docs/PRECISION.md). Default fp32',
    parse: oneOf(PRECISION_CHOICES), forward: true, config: true, yaml: [{ file: 'nn', key: 'precision' }],
  }),
  device: choice(DEVICE_CHOICES, {
    arg: '<device>', help: 'where this process trains: cpu, gpu (a WebGPU adapter through the optional webgpu package; fails when there is none) or auto (a hardware GPU a short measurement finds faster, else the cpu; default cpu; docs/GPU.md)',
    parse: oneOf(DEVICE_CHOICES), forward: true, yaml: [{ file: 'cluster', key: 'device' }],
  }),
  commBackend: choice(COMM_BACKENDS, {
    arg: '<name>', help: 'communication backend: auto (ranks on one host through shared memory, others over TCP) or tcp (every link over TCP; default auto)',
    parse: oneOf(COMM_BACKENDS), forward: true,
  }),
  checksumEvery: valued({ arg: '<steps>', help: 'compare parameter checksums across workers every N steps (0: never)', parse: nonNegativeInt, default: 100, forward: true }),
  timeout: valued({
    arg: '<seconds>', help: 'deadline of every wait on a peer', parse: positiveNumber, default: 60, forward: true,
    // Under allreduce there is no straggler to leave behind: cluster_config's `timeout` bounds every peer wait.
    yaml: [{ file: 'cluster', key: 'timeout', read: (v, f) => ((f.strategy ?? 'ps') === 'allreduce' ? (v as number | undefined) : undefined) }],
  }),
  iface: valued<string>({ arg: '<name>', help: 'network interface or address for data connections (env SMOLCLUSTER_IFNAME; default: auto, wired before Wi-Fi)', forward: true }),
  checkpointEvery: valued({ arg: '<steps>', help: 'save a training checkpoint every N steps, and at Ctrl-C (default 500; 0: never; docs/CHECKPOINT.md)', parse: nonNegativeInt, forward: true }),
  checkpointDir: valued<string>({ arg: '<dir>', help: 'where checkpoints go (default: <experiment>/checkpoints)', forward: true }),
  keepCheckpoints: valued({ arg: '<k>', help: 'keep the newest K checkpoints (default 3)', parse: positiveInt, forward: true }),
  resume: valued<string>({ arg: '<dir|auto>', help: 'continue from the newest good checkpoint in DIR (auto: in --checkpoint-dir, if any)', forward: true }),
} as const;
