import { Command } from 'commander';
import { trainInThisProcess } from '../launch/in_process.js';
import { datasetFromData } from '../launch/worker_flags.js';
import type { TrainResult } from '../train/run/result.js';
import { checkInitExists } from '../train/run/init_source.js';
import { addConfigFlags } from './config.js';
import { positiveInt } from './options.js';
import { type TrainFlags, addDashboardFlags, addSinkFlags, addTrainFlags } from './train_flags.js';

interface TrainCommandFlags extends TrainFlags {
  workers: number;
}

export function trainCommand(): Command {
  const cmd = new Command('train').description('train or fine-tune a model (MNIST by default; CIFAR-10, text and chat data; --init a Hugging Face folder or GGUF file, LoRA and QLoRA): in this process, or as a local cluster of --workers processes');
  return addConfigFlags(addDashboardFlags(addSinkFlags(addTrainFlags(cmd))))
    .option('--workers <n>', 'worker processes on this machine (all-reduce data parallel); 1 trains in this process', positiveInt, 1)
    .action(async (flags: TrainCommandFlags) => runTrain(flags));
}

async function runTrain(flags: TrainCommandFlags): Promise<void> {
  checkInitExists(flags.init);
  const inferred = datasetFromData(flags);
  if (inferred) process.stderr.write(`smolcluster: --dataset ${inferred} (from --data-file and the model, which takes tokens)\n`);
  const tp = flags.tensorParallel ?? 1;
  if (tp > 1 && flags.workers % tp !== 0) throw new Error(`--tensor-parallel ${tp}: needs --workers a multiple of ${tp} (got ${flags.workers}); the data-parallel degree is workers ÷ tensor parallel`);
  const layerByLayer = [flags.activationCheckpointing && '--activation-checkpointing', flags.zero === 3 && '--zero 3', (flags.pipelineStages ?? 1) > 1 && `--pipeline-stages ${flags.pipelineStages}`].filter(Boolean);
  if (flags.packing && layerByLayer.length > 0) throw new Error(`--packing cannot be combined with ${layerByLayer.join(', ')} yet: the model runs layer by layer there, which does not carry the packed sequences`);
  const ep = flags.expertParallel ?? 1;
  if (ep > 1 && (flags.workers < ep || flags.workers % ep !== 0)) throw new Error(`--expert-parallel ${ep}: needs --workers a multiple of ${ep} (got ${flags.workers}); expert groups of ${ep} workers, data parallel across all of them`);
  const pp = flags.pipelineStages ?? 1;
  if (pp > 1 && flags.workers % (pp * tp) !== 0) {
    const both = tp > 1 ? ` × --tensor-parallel ${tp}` : '';
    throw new Error(`--pipeline-stages ${pp}${both}: needs --workers a multiple of ${pp * tp} (got ${flags.workers}); the data-parallel degree is workers ÷ ${tp > 1 ? '(stages × tensor parallel)' : 'stages'}`);
  }
  if (flags.zero !== undefined && (flags.strategy ?? 'allreduce') !== 'allreduce') throw new Error(`--zero ${flags.zero}: runs with --strategy allreduce, not ${flags.strategy}`);
  if (flags.zero !== undefined && flags.workers < 2) throw new Error(`--zero ${flags.zero}: shards the model over the workers; needs --workers 2 or more (got ${flags.workers})`);
  // ps / async-ps: a server process besides the --workers workers.
  if (flags.workers > 1 || (flags.strategy !== undefined && flags.strategy !== 'allreduce')) {
    const { launchLocalCluster } = await import('../launch/local.js');
    process.exitCode = await launchLocalCluster(flags);
    return;
  }
  await trainInProcess(flags);
}

/** A run in this process (strategy `local`), summary printed; `run` uses it too. */
export async function trainInProcess(flags: TrainFlags): Promise<{ result: TrainResult | null; dir: string }> {
  return trainInThisProcess(flags, ({ result, dir }) => {
    if (result) printSummary(result, dir);
  });
}

/** " with 2 workers and a server (ps)": who trained, and the server that only aggregated. */
function clusterOf(r: TrainResult): string {
  // Model-parallel ranks (pipeline stages, tensor-parallel shards) train one replica together: workers counts replicas.
  if (/\+(pp|tp)\d/.test(r.strategy)) return ` with ${r.world_size} workers, ${r.workers} data-parallel (${r.strategy})`;
  const servers = (r.world_size ?? r.workers) - r.workers;
  if (r.workers <= 1 && servers === 0) return '';
  return ` with ${r.workers} worker${r.workers > 1 ? 's' : ''}${servers > 0 ? ` and a server` : ''} (${r.strategy})`;
}

/** The test accuracy, or the test loss (regression), or that the run did not evaluate (rather than "NaN"). */
function testScore(r: TrainResult): string {
  if (r.test_accuracy !== null) return `test accuracy ${(r.test_accuracy * 100).toFixed(2)}%`;
  return r.test_loss === null || r.test_loss === undefined ? 'no test evaluation' : `test loss ${r.test_loss.toFixed(4)}`;
}

/** "1234 samples/s", and for language models "…, 39488 tokens/s, MFU 31.2%". */
function throughput(r: TrainResult): string {
  const samples = `${Math.round(r.samples_per_sec)} samples/s`;
  if (r.tokens_per_sec === undefined) return samples;
  return `${samples}, ${Math.round(r.tokens_per_sec)} tokens/s${r.mfu ? `, MFU ${(r.mfu.value * 100).toFixed(1)}%` : ''}`;
}

/** The one-line summary every training run ends with: what was trained, how well, how fast, and on what. */
export function printSummary(r: TrainResult, dir: string): void {
  const threads = `${r.threads} thread${r.threads > 1 ? 's' : ''}${r.workers > 1 ? ' per worker' : ''}`;
  process.stdout.write(
    `${r.model} on ${r.config.dataset}${clusterOf(r)}: ${r.steps} steps${r.resumed_from ? ` (resumed at step ${r.resumed_from})` : ''}, ` +
      `final loss ${r.final_loss.toFixed(4)}, ` +
      `${testScore(r)}, ` +
      `${r.test_perplexity !== undefined ? `test perplexity ${r.test_perplexity.toFixed(2)}, ` : ''}` +
      `${r.best ? `best eval loss ${r.best.eval_loss.toFixed(4)} at step ${r.best.step}${r.stopped_early ? ' (stopped early)' : ''}, ` : ''}` +
      `${throughput(r)} (${r.backend}, ${threads}, ${r.precision ?? 'fp32'} on ${r.device ?? 'cpu'}), ${r.wall_seconds.toFixed(1)} s; results in ${dir}\n`,
  );
}
