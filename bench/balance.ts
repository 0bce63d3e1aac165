/**
 * npm run bench:balance -- [--steps 150] [--batch 128] [--fraction 0.38] [--interval 10]
 *                          [--period-ms 3] [--model cnn] [--hidden 128] [--target 0.9] [--eval-every 25] [--only none,dynamic,...] [--no-mid]
 *                          [--no-async] [--keep]
 * npm run bench:balance -- --noise [--steps 600] [--interval 10] [--keep]
 *
 * Load balancing on a really slow node: two workers (allreduce, one thread each) on this machine,
 * rank 1's CPU time limited to `fraction` of one CPU by a cgroup quota (bench/lib/slow_cluster.ts;
 * the `slow` fault where no cgroup is writable, and the report says so). The default 0.38 is the
 * quota that makes the worker 3× slower per sample as measured (the `none` row's ratio): a third
 * of a CPU measured 3.3–3.5×, the throttled process losing time beyond its quota (docs/BALANCE.md). The same run with no
 * balancing and with each policy: cluster samples/s (and the ratio to no balancing), training time
 * to a target test accuracy, each rank's wait fraction, the slowed rank's share after the first and
 * second rebalance. A last run slows rank 1 only from a third of the way in (dynamic): its share
 * before and after. Figures over steps [2K, end), leaving out the step after each evaluation (the
 * others wait there for rank 0's: bench/lib/balance_report.ts). Time to target is those
 * steps' time until the evaluation that reached it.
 *
 * Then async-ps (a server and two workers, worker 2 slowed the same way, --push-every 4, no
 * evaluations), on fixed shards and balanced by push cadence (src/train/strategies/async_ps_leases.ts):
 * the workers' samples/s over the run's wall time, each worker's steps, and the fast worker's idle
 * share of the run (it finished its shard and waited for the end). `--no-async` leaves them out.
 * Last line: one JSON object with every figure. `--keep` keeps the runs' experiment folders
 * (events.jsonl has every decision's measurements) and prints where.
 *
 * `--noise`: instead, the real-world noise scenarios (bench/lib/balance_noise.ts): a third of a CPU
 * in bursty 100 ms quota periods at batch 32 and 128, and equal nodes with a CPU burner beside one
 * worker for the middle third of the run; 600 steps unless --steps says otherwise.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BalanceRun, readBalanceRun } from './lib/balance_report.js';
import { fmtNum, machineInfo, parseOnly, renderTable } from './lib/index.js';
import { runSlowCluster } from './lib/slow_cluster.js';
import { type AsyncBalanceRun, readAsyncBalanceRun } from './lib/async_balance_report.js';
import { renderNoise, runNoiseScenarios } from './lib/balance_noise.js';

/**
 * Each policy as a user types it, with the default balance model; `dynamic-arrival` /
 * `dynamic-speed`: dynamic with `--balance-model arrival` (jitter ignored) / `speed` (speed per sample alone).
 */
const POLICIES = ['none', 'proportional', 'dynamic', 'hybrid', 'dynamic-arrival', 'dynamic-speed'] as const;
type Row = (typeof POLICIES)[number] | 'dynamic, slowed mid-run';

interface Options {
  steps: number;
  batch: number;
  fraction: number;
  periodMs?: number;
  interval: number;
  model: string;
  hidden: string;
  target: number;
  evalEvery: number;
  only: (typeof POLICIES)[number][];
  mid: boolean;
  async: boolean;
  keep: boolean;
  noise: boolean;
  stepsGiven: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { steps: 150, batch: 128, fraction: 0.38, interval: 10, model: 'cnn', hidden: '128', target: 0.9, evalEvery: 25, only: [...POLICIES], mid: true, async: true, keep: false, noise: false, stepsGiven: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => argv[++i];
    if (a === '--steps') {
      o.steps = Number(next());
      o.stepsGiven = true;
    } else if (a === '--noise') o.noise = true;
    else if (a === '--batch') o.batch = Number(next());
    else if (a === '--fraction') o.fraction = Number(next());
    else if (a === '--period-ms') o.periodMs = Number(next());
    else if (a === '--interval') o.interval = Number(next());
    else if (a === '--model') o.model = next();
    else if (a === '--hidden') o.hidden = next();
    else if (a === '--target') o.target = Number(next());
    else if (a === '--eval-every') o.evalEvery = Number(next());
    else if (a === '--only') o.only = parseOnly(next(), POLICIES);
    else if (a === '--no-mid') o.mid = false;
    else if (a === '--no-async') o.async = false;
    else if (a === '--keep') o.keep = true;
    else throw new Error(`bench:balance: unknown argument ${a}`);
  }
  if (!(o.fraction > 0 && o.fraction <= 1)) throw new Error('bench:balance: --fraction must be in (0, 1] (1: equal nodes, none slowed)');
  if (!(o.steps > 4 * o.interval)) throw new Error('bench:balance: --steps must exceed 4 × --interval');
  return o;
}

async function runOne(o: Options, dir: string, name: string, policy: string, fromStep: number): Promise<{ run: BalanceRun; slowedBy: string }> {
  const args = [
    '--model', o.model, ...(o.model === 'mlp' ? ['--hidden', o.hidden] : []), '--batch-size', String(o.batch), '--max-steps', String(o.steps),
    '--epochs', '20', '--threads', '1', '--eval-every', String(o.evalEvery), '--checksum-every', '0', '--timeout', '60',
    '--name', name, '--experiments-dir', dir,
    ...balanceArgs(policy, o.interval),
  ];
  const r = await runSlowCluster({ args, workers: 2, slowRank: 1, fraction: o.fraction, periodMs: o.periodMs, fromStep, metricsFile: join(dir, name, 'metrics.jsonl') });
  if (r.codes.some((c) => c !== 0)) throw new Error(`bench:balance: ${name} failed:\n${r.stderr.join('\n')}`);
  return { run: readBalanceRun(join(dir, name), { from: 2 * o.interval, target: o.target, evalEvery: o.evalEvery }), slowedBy: r.slowedBy };
}

function balanceArgs(policy: string, interval: number): string[] {
  if (policy === 'none') return [];
  const model = policy.startsWith('dynamic-') ? ['--balance-model', policy.slice('dynamic-'.length)] : [];
  const name = policy.startsWith('dynamic-') ? 'dynamic' : policy;
  return ['--enable-load-balancing', '--load-balance-policy', name, ...model, '--rebalance-interval', String(interval)];
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** async-ps: server (rank 0) and two workers, worker 2 slowed from the start. */
async function runAsync(o: Options, dir: string, balanced: boolean): Promise<AsyncBalanceRun> {
  const name = balanced ? 'async-balanced' : 'async';
  const args = [
    '--strategy', 'async-ps', '--push-every', '4', '--model', o.model, ...(o.model === 'mlp' ? ['--hidden', o.hidden] : []), '--batch-size', String(o.batch),
    '--max-steps', String(o.steps), '--epochs', '20', '--threads', '1', '--eval-every', '0', '--timeout', '60', '--name', name, '--experiments-dir', dir,
    ...(balanced ? ['--enable-load-balancing'] : []),
  ];
  const r = await runSlowCluster({ args, workers: 3, slowRank: 2, fraction: o.fraction, periodMs: o.periodMs, metricsFile: join(dir, name, 'metrics.jsonl') });
  if (r.codes.some((c) => c !== 0)) throw new Error(`bench:balance: ${name} failed:\n${r.stderr.join('\n')}`);
  return readAsyncBalanceRun(join(dir, name), [1, 2]);
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const machine = machineInfo();
  const dir = mkdtempSync(join(tmpdir(), 'smolcluster-bench-balance-'));
  if (o.noise) return noise(o, dir, machine);
  const runs = new Map<Row, BalanceRun>();
  let slowedBy = '';
  try {
    for (const policy of o.only) {
      process.stderr.write(`bench:balance: ${policy} …\n`);
      const r = await runOne(o, dir, policy, policy, 0);
      runs.set(policy, r.run);
      slowedBy = r.slowedBy;
    }
    const midStep = Math.round(o.steps / 3);
    if (o.mid) {
      process.stderr.write(`bench:balance: dynamic, slowed from step ${midStep} …\n`);
      runs.set('dynamic, slowed mid-run', (await runOne(o, dir, 'mid', 'dynamic', midStep)).run);
    }
    const none = runs.get('none');
    const share = (r: BalanceRun, i: number): string => (r.rebalances[i] ? `${pct(r.rebalances[i].shares[1])} @${r.rebalances[i].step}` : '—');
    const rows = [...runs].map(([name, r]) => [
      name, fmtNum(r.samplesPerSec, 0), none ? `${(r.samplesPerSec / none.samplesPerSec).toFixed(2)}×` : '—',
      fmtNum(r.runSamplesPerSec, 0), none ? `${(r.runSamplesPerSec / none.runSamplesPerSec).toFixed(2)}×` : '—',
      r.timeToTarget === null ? 'not reached' : `${r.timeToTarget.toFixed(1)} s`,
      pct(r.waitFraction[0]), pct(r.waitFraction[1]), `${(r.msPerSample[1] / r.msPerSample[0]).toFixed(2)}×`,
      share(r, 0), share(r, 1), pct(r.finalShare[1]), `${r.lateMs.mean.toFixed(1)} ± ${r.lateMs.std.toFixed(1)}`,
      `${r.busyMs[0].toFixed(1)} / ${r.busyMs[1].toFixed(1)}`, `${fmtNum(r.afterEvalWaitMs[0], 1)} / ${fmtNum(r.afterEvalWaitMs[1], 1)}`,
    ]);
    process.stdout.write(`bench:balance — 2 workers (allreduce, 1 thread each), ${o.model}${o.model === 'mlp' ? ` ${o.hidden}` : ''}, batch ${o.batch} per worker (global ${2 * o.batch}), ${o.steps} steps, K=${o.interval}\n`);
    process.stdout.write(`${o.fraction === 1 ? 'equal nodes: no rank slowed' : `rank 1 slowed by ${slowedBy} to ${pct(o.fraction)} of a CPU`}; figures over steps ${2 * o.interval}–${o.steps} but the first after each evaluation; load average ${machine.loadAvg1} at start\n\n`);
    process.stdout.write(renderTable([
      { header: 'balancing' }, { header: 'samples/s' }, { header: 'vs none' }, { header: 'whole run (result.json)' }, { header: 'vs none' }, { header: `time to ${pct(o.target)}` },
      { header: 'wait r0' }, { header: 'wait r1' }, { header: 'r1 ms/sample ÷ r0' }, { header: 'r1 share, 1st' }, { header: '2nd' }, { header: 'final' },
      { header: 'r1 late (ms, mean ± sd)' }, { header: 'busy r0 / r1 (ms/step)' }, { header: 'wait after eval r0 / r1 (ms)' },
    ], rows) + '\n');
    if (o.mid) process.stdout.write(`\n(mid-run: rank 1 slowed from step ${midStep})\n`);
    const asyncRuns: Record<string, AsyncBalanceRun> = {};
    if (o.async) {
      for (const balanced of [false, true]) {
        process.stderr.write(`bench:balance: async-ps${balanced ? ', balanced' : ''} …\n`);
        asyncRuns[balanced ? 'balanced' : 'fixed shards'] = await runAsync(o, dir, balanced);
      }
      const fixed = asyncRuns['fixed shards'];
      process.stdout.write(`\nasync-ps: server + 2 workers, worker 2 slowed to ${pct(o.fraction)} of a CPU, --push-every 4, ${o.steps} steps' worth of batches per worker\n\n`);
      process.stdout.write(renderTable([
        { header: 'async-ps' }, { header: 'samples/s' }, { header: 'vs fixed shards' }, { header: 'steps w1 / w2' }, { header: 'run (s)' }, { header: 'fast worker idle at the end' },
      ], Object.entries(asyncRuns).map(([name, r]) => [
        name, fmtNum(r.samplesPerSec, 0), `${(r.samplesPerSec / fixed.samplesPerSec).toFixed(2)}×`, `${r.steps[0]} / ${r.steps[1]}`, r.seconds.toFixed(1), pct(r.fastIdleFraction),
      ])) + '\n');
    }
    process.stdout.write(JSON.stringify({ bench: 'balance', options: o, slowedBy, machine, runs: Object.fromEntries(runs), asyncPs: asyncRuns }) + '\n');
  } finally {
    if (o.keep) process.stderr.write(`bench:balance: runs kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

async function noise(o: Options, dir: string, machine: ReturnType<typeof machineInfo>): Promise<void> {
  const n = { steps: o.stepsGiven ? o.steps : 600, interval: o.interval, dir };
  try {
    const results = await runNoiseScenarios(n);
    if (typeof results === 'string') {
      process.stderr.write(`${results}\n`);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(renderNoise(n, results, machine.loadAvg1));
    process.stdout.write(JSON.stringify({ bench: 'balance', mode: 'noise', options: n, machine, results }) + '\n');
  } finally {
    if (o.keep) process.stderr.write(`bench:balance: runs kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
