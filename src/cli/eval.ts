import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { EVAL_OPTIONS, type OptionValues } from '../config/options/index.js';
import { type EvalRequest, type EvalTallies, addEvalTallies, evalFigures, evaluateTallies } from '../eval/evaluate.js';
import { comparisonTable, figureLines } from '../eval/report.js';
import { ConfigError } from '../util/errors.js';
import { loadFromFlags, loadedLine } from './generation_flags.js';
import { addOptions } from './option_table.js';

type EvalFlags = OptionValues<typeof EVAL_OPTIONS> & { shard?: { rank: number; of: number } };

/** Both models' sums: what a shard prints and the driver adds. */
interface ShardResult {
  model: EvalTallies;
  compare?: EvalTallies;
}

/**
 * `smolcluster eval --model SRC [--data-file F] [--task T.jsonl ...] [--compare SRC2] [--json]`: a
 * model's loss, perplexity and token accuracy over a file and its scores on task files, beside a
 * second model's (docs/EVAL.md). With --workers N, N processes each score every N-th window,
 * example and document (the hidden --shard r/N) and this one adds their sums.
 */
export function evalCommand(): Command {
  const cmd = new Command('eval')
    .description('score a model: perplexity of a file, multiple-choice and generation tasks, beside a second model (docs/EVAL.md)')
    .addOption(new Option('--shard <r/n>', 'score only the r-th of n shards and print the sums as JSON (what --workers runs)').argParser(shardFlag).hideHelp());
  return addOptions(cmd, EVAL_OPTIONS).action(async (f: EvalFlags) => {
    if (f.model === undefined) throw new ConfigError('command line', '--model', 'eval needs --model SRC (a Hugging Face folder, a GGUF file, a model file, or a run\'s folder)');
    if (f.dataFile === undefined && (f.task ?? []).length === 0) throw new ConfigError('command line', '--data-file', 'eval needs something to score: --data-file FILE and/or --task FILE.jsonl');
    if (f.compareAdapter !== undefined && f.compare === undefined) throw new ConfigError('command line', '--compare-adapter', 'goes with --compare SRC (the model the adapter is merged into)');
    if (f.shard) {
      process.stdout.write(`${JSON.stringify(await scoreHere(f))}\n`);
      return;
    }
    const result = f.workers > 1 ? addShards(await runShards(f)) : await scoreHere(f);
    print(f, result);
  });
}

function shardFlag(text: string): { rank: number; of: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  if (!m || Number(m[1]) >= Number(m[2])) throw new InvalidArgumentError('expected r/n with 0 <= r < n.');
  return { rank: Number(m[1]), of: Number(m[2]) };
}

function requestOf(f: EvalFlags): EvalRequest {
  return { dataFile: f.dataFile, textField: f.textField, tasks: f.task, context: f.context, stride: f.stride, batchRows: f.batchSize, precision: f.precision, shard: f.shard };
}

/** Both models scored in this process, one loaded at a time. */
async function scoreHere(f: EvalFlags): Promise<ShardResult> {
  const model = await scoreModel(f);
  if (f.compare === undefined) return { model };
  return { model, compare: await scoreModel({ ...f, model: f.compare, adapter: f.compareAdapter }) };
}

async function scoreModel(f: EvalFlags): Promise<EvalTallies> {
  const { generator, release } = await loadFromFlags('eval', f);
  try {
    if (!f.shard && !f.json) process.stderr.write(`${loadedLine(generator)}\n`);
    return await evaluateTallies(generator, requestOf(f));
  } finally {
    release();
  }
}

/** N copies of this command, each on its shard with an equal share of the cores; their printed sums. */
async function runShards(f: EvalFlags): Promise<ShardResult[]> {
  const args = withoutFlags(process.argv.slice(2), ['--workers', '--json']);
  const threads = f.threads ?? Math.max(1, Math.floor(availableParallelism() / f.workers));
  const env = { ...process.env, SMOLCLUSTER_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  return Promise.all(Array.from({ length: f.workers }, (_, r) => runShard([...args, '--shard', `${r}/${f.workers}`], env, r)));
}

function runShard(args: string[], env: NodeJS.ProcessEnv, rank: number): Promise<ShardResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as ShardResult);
      else reject(new Error(`eval worker ${rank} of the --workers shards ended with ${signal ?? `exit code ${code}`}: ${stderr.trim()}`));
    });
  });
}

/** argv without each named flag and its value (`--flag v` or `--flag=v`; a switch alone). */
function withoutFlags(argv: readonly string[], flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const flag = flags.find((name) => argv[i] === name || argv[i].startsWith(`${name}=`));
    if (!flag) out.push(argv[i]);
    else if (argv[i] === flag && flag !== '--json') i++;
  }
  return out;
}

function addShards(shards: readonly ShardResult[]): ShardResult {
  const model = addEvalTallies(shards.map((s) => s.model));
  return shards[0].compare ? { model, compare: addEvalTallies(shards.map((s) => s.compare!)) } : { model };
}

function print(f: EvalFlags, r: ShardResult): void {
  const model = evalFigures(r.model);
  const compare = r.compare && evalFigures(r.compare);
  if (f.json) {
    process.stdout.write(`${JSON.stringify({ model: { source: f.model, ...model }, ...(compare ? { compare: { source: f.compare, ...compare } } : {}) }, null, 2)}\n`);
    return;
  }
  const lines = compare ? comparisonTable(model, compare, [f.model!, f.compare!]) : figureLines(model);
  process.stdout.write(`${lines.join('\n')}\n`);
}
