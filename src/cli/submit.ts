import { existsSync, writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { submitJob } from '../cluster/client.js';
import { type JobResult, resultFile } from '../cluster/job.js';
import type { JobSpec, JobUpdate, Weighting } from '../cluster/messages.js';
import { defaultLettersDir, loadLetters } from '../data/letters.js';
import { clusterToken, describeUpdate, either, parseHostPort, parsePort } from './cluster_flags.js';
import { nonNegativeInt, positiveInt, positiveNumber } from './options.js';
import { PRECISIONS, type Precision } from '../tensor/precision.js';

export interface JobFlags {
  data?: string;
  rounds?: number;
  epochs?: number;
  hidden?: number;
  lr?: number;
  seed: number;
  weighting: Weighting;
  precision: Precision;
  output?: string;
}

interface SubmitFlags extends JobFlags {
  coordinator?: string;
  timeoutMs: number;
}

const int = (s: string): number => positiveInt(s);
const num = (s: string): number => positiveNumber(s);

/** The job flags shared by `submit` and `federated`. */
export function addJobFlags(cmd: Command): Command {
  return cmd
    .option('--data <dir>', 'letters folder (train_letters<N>.txt + validate_letters.txt; default: the copy in the package)')
    .option('--rounds <n>', 'rounds of averaging', int)
    .option('--epochs <n>', 'most epochs per task (early stop when the summed loss moves ≤ 0.2)', int)
    .option('--hidden <n>', 'hidden units', int)
    .option('--lr <eta>', 'learning rate on the summed loss', num)
    .option('--seed <n>', 'seed of the initial weights', nonNegativeInt, 0)
    .addOption(new Option('--weighting <how>', 'average deltas with equal weights or by sample count').choices(['equal', 'samples']).default('equal'))
    // Not auto: every task of a job computes alike, wherever it runs (docs/PRECISION.md).
    .addOption(new Option('--precision <name>', 'compute precision of every task: fp32 or bf16 (docs/PRECISION.md)').choices(PRECISIONS).default('fp32'))
    .option('--output <file>', 'write the job result (result.json) here');
}

/** A positional "letters" that is not a folder here means the packaged copy (the original's example). */
function dataDir(dir: string | undefined): string {
  if (dir === undefined) return defaultLettersDir();
  if (!existsSync(dir) && dir === 'letters') return defaultLettersDir();
  return dir;
}

/** Loads the data and builds the job from flags and the original's positional values. */
export function jobFrom(f: JobFlags, pos: Array<string | undefined> = []): JobSpec {
  const [dir, rounds, epochs, hidden, lr] = pos;
  const chosen = f.data !== undefined || dir !== undefined ? either(f.data, dir, '--data', (s) => s) : undefined;
  const data = loadLetters(dataDir(chosen));
  return {
    rounds: either(f.rounds, rounds, '--rounds', int),
    epochs: either(f.epochs, epochs, '--epochs', int),
    hidden: either(f.hidden, hidden, '--hidden', int),
    lr: either(f.lr, lr, '--lr', num),
    seed: f.seed,
    weighting: f.weighting,
    precision: f.precision,
    shards: data.train,
    validation: data.validation,
  };
}

export function printUpdate(u: JobUpdate): void {
  process.stdout.write(`${describeUpdate(u)}\n`);
}

export function writeResult(file: string | undefined, result: JobResult): void {
  if (file) writeFileSync(file, resultFile(result));
}

/**
 * `smolcluster submit --coordinator HOST:PORT --data DIR --rounds R --epochs E --hidden H --lr ETA`,
 * or the original's `submit localhost 9095 letters 3 75 24 0.0001`.
 */
export function submitCommand(): Command {
  const cmd = new Command('submit')
    .description('submit a job of rounds (federated averaging on the letters data) to a coordinator and wait for its result')
    .argument('[args...]', "the original's positional form: host port dir rounds epochs hidden eta");
  return addJobFlags(cmd)
    .option('--coordinator <host:port>', "the coordinator's address")
    .option('--timeout-ms <ms>', 'give up when the job has not ended after this long (queueing included)', positiveInt, 3_600_000)
    .action(async (args: string[], f: SubmitFlags) => {
      if (args.length > 7) throw new Error(`submit takes at most 7 positional values (host port dir rounds epochs hidden eta), got ${args.length}`);
      const [host, port, ...job] = args;
      const flagAddr = f.coordinator ? parseHostPort(f.coordinator, '--coordinator') : undefined;
      const addr = {
        host: either(flagAddr?.host, host, '--coordinator', (s) => s),
        port: either(flagAddr?.port, port, '--coordinator', parsePort),
      };
      const spec = jobFrom(f, job);
      const result = await submitJob({ ...addr, token: clusterToken(), spec, connectTimeoutMs: 10_000, timeoutMs: f.timeoutMs, onUpdate: printUpdate });
      writeResult(f.output, result);
    });
}
