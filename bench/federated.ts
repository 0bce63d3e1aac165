/**
 * npm run bench:federated -- [--repeats N] [--seeds N]
 *
 * The original coordinator/compute-node system's setting: federated averaging on the UCI letters
 * data, 11 tasks per round, 15 epochs per task, h = 20, eta = 1e-4, on 4 local compute nodes with
 * load probability 0, for 5 and 25 rounds — through the real CLI (`smolcluster federated --nodes 4`:
 * a coordinator, 4 compute-node processes, the client). Per run:
 *
 *   - wall time of the whole command (node processes started, job run, everything stopped);
 *   - CPU time of the whole command: the coordinator's process and its node processes, user + system
 *     (Linux: the children's times in /proc/self/stat), which a busy machine inflates far less than
 *     wall time — next to the load average, it says whether a slow wall time was the machine's;
 *   - job time on the coordinator (result.json `ms`: first round sent to last round evaluated);
 *   - final validation error, and whether every round's error and the final weights equal the same
 *     algorithm run in one plain loop in this process (the reference, timed here too).
 *
 * The original took 10 min 39 s (639 s) for 25 rounds on 4 nodes (0.324 validation error, with a
 * ReLU that was the identity). Target: 25 rounds < 5 s wall time, final validation error ≤ 0.40.
 * `--seeds N` also reports the in-process final error for seeds 0..N-1 (it depends on the initial
 * weights). Last line: one JSON object.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fedavgInProcess } from '../src/cluster/reference.js';
import { defaultLettersDir, loadLetters, type LettersData } from '../src/data/letters.js';
import { backend } from '../src/tensor/dispatch.js';
import { fmtNum, fmtRatio, machineInfo, median, packageRoot, renderTable, threadEnv } from './lib/index.js';

const JOB = { epochs: 15, hidden: 20, lr: 1e-4, seed: 0 };
const NODES = 4;
const ORIGINAL_25_ROUNDS_S = 639;
const TARGET_S = 5;
const TARGET_ERROR = 0.4;
const ROOT = packageRoot(import.meta.url);

interface ClusterRun {
  wallS: number;
  /** User + system CPU seconds of the command and its node processes (null off Linux). */
  cpuS: number | null;
  jobS: number;
  errors: number[];
  checksum: string;
}

function runFederated(rounds: number): Promise<ClusterRun> {
  const dir = mkdtempSync(join(tmpdir(), 'smolcluster-bench-fed-'));
  const args = [join(ROOT, 'dist/src/cli/main.js'), 'federated', '--nodes', String(NODES), '--rounds', String(rounds), '--epochs', String(JOB.epochs)];
  args.push('--hidden', String(JOB.hidden), '--lr', String(JOB.lr), '--seed', String(JOB.seed), '--load-probability', '0', '--output', join(dir, 'r.json'), '--out', join(dir, 'run'));
  const t0 = performance.now();
  const cpu0 = childrenCpuS();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: threadEnv(1), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('exit', (code) => {
      const wallS = (performance.now() - t0) / 1000;
      const cpu1 = childrenCpuS();
      try {
        if (code !== 0) throw new Error(`smolcluster federated failed: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
        const r = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')) as { ms: number; history: Array<{ validation_error: number }>; weights_checksum: string };
        resolve({ wallS, cpuS: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0, jobS: r.ms / 1000, errors: r.history.map((h) => h.validation_error), checksum: r.weights_checksum });
      } catch (err) {
        reject(err);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

/**
 * CPU seconds (user + system) of this process's finished, waited-for descendants: fields cutime and
 * cstime of /proc/self/stat, in USER_HZ (100 per second on Linux). A spawned command's figure includes
 * the processes it spawned and waited for. Null where there is no /proc.
 */
function childrenCpuS(): number | null {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // from field 3 (state) on
    return (Number(fields[13]) + Number(fields[14])) / 100; // fields 16 and 17
  } catch {
    return null;
  }
}

/** The reference: the same rounds in one loop, in this process (no wire, no nodes, no scheduler). */
async function inProcess(data: LettersData, rounds: number, seed: number): Promise<{ s: number; cpuS: number; errors: number[]; checksum: string }> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const r = await fedavgInProcess(data, { ...JOB, rounds, seed });
  const c = process.cpuUsage(c0);
  return { s: (performance.now() - t0) / 1000, cpuS: (c.user + c.system) / 1e6, errors: r.validationErrors, checksum: r.weightsChecksum };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function flag(argv: string[], name: string, fallback: number): number {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const repeats = flag(argv, '--repeats', 3);
  const seeds = flag(argv, '--seeds', 5);
  backend().setThreads(1);
  const data = loadLetters(defaultLettersDir());
  const loadBefore = loadavg()[0];
  const rows = [];
  for (const rounds of [5, 25]) {
    const runs: ClusterRun[] = [];
    const refs: number[] = [];
    const refCpus: number[] = [];
    let ref = await inProcess(data, rounds, JOB.seed);
    for (let k = 0; k < repeats; k++) {
      process.stderr.write(`bench:federated: ${rounds} rounds, run ${k + 1} of ${repeats} ...\n`);
      runs.push(await runFederated(rounds));
      ref = await inProcess(data, rounds, JOB.seed);
      refs.push(ref.s);
      refCpus.push(ref.cpuS);
    }
    const identical = runs.every((r) => r.checksum === ref.checksum && r.errors.every((e, i) => e === ref.errors[i]));
    const walls = runs.map((r) => r.wallS);
    const jobs = runs.map((r) => r.jobS);
    const cpus = runs.every((r) => r.cpuS !== null) ? runs.map((r) => r.cpuS as number) : null;
    rows.push({
      rounds,
      wall_s: median(walls),
      wall_s_range: [Math.min(...walls), Math.max(...walls)],
      wall_s_runs: walls,
      cpu_s: cpus ? median(cpus) : null,
      cpu_s_range: cpus ? [Math.min(...cpus), Math.max(...cpus)] : null,
      in_process_cpu_s: median(refCpus),
      job_s: median(jobs),
      job_s_range: [Math.min(...jobs), Math.max(...jobs)],
      in_process_s: median(refs),
      job_vs_in_process: median(jobs) / median(refs),
      vs_original: rounds === 25 ? ORIGINAL_25_ROUNDS_S / median(walls) : null,
      validation_error: runs[0].errors[rounds - 1],
      identical_to_in_process: identical,
    });
  }
  const seedErrors: number[] = [];
  for (let s = 0; s < seeds; s++) seedErrors.push((await inProcess(data, 25, s)).errors[24]);
  const table = renderTable(
    [{ header: 'rounds' }, { header: 'wall (min–max)', align: 'right' }, { header: 'job on coordinator', align: 'right' }, { header: 'in one process', align: 'right' },
      { header: 'job / in-process', align: 'right' }, { header: 'CPU, all processes (in one process)', align: 'right' }, { header: 'vs original (639 s)', align: 'right' }, { header: 'validation error', align: 'right' }, { header: 'same bits' }, { header: 'target' }],
    rows.map((r) => [String(r.rounds), `${fmtNum(r.wall_s, 2)} s (${fmtNum(r.wall_s_range[0], 2)}–${fmtNum(r.wall_s_range[1], 2)})`,
      `${fmtNum(r.job_s, 2)} s (${fmtNum(r.job_s_range[0], 2)}–${fmtNum(r.job_s_range[1], 2)})`, `${fmtNum(r.in_process_s, 2)} s`, fmtRatio(r.job_vs_in_process),
      `${r.cpu_s === null ? 'n/a' : `${fmtNum(r.cpu_s, 2)} s`} (${fmtNum(r.in_process_cpu_s, 2)} s)`,
      r.vs_original === null ? '' : fmtRatio(r.vs_original), r.validation_error.toFixed(4), r.identical_to_in_process ? 'yes' : 'NO',
      r.rounds === 25 ? `< ${TARGET_S} s, ≤ ${TARGET_ERROR}: ${r.wall_s < TARGET_S && r.validation_error <= TARGET_ERROR ? 'met' : 'missed'}` : '']),
  );
  process.stdout.write(`letters, 11 tasks/round × ${JOB.epochs} epochs, h=${JOB.hidden}, eta=${JOB.lr}, seed ${JOB.seed}, ${NODES} compute-node processes (load 0) on 127.0.0.1; median of ${repeats} runs\n${table}\n`);
  process.stdout.write(`final validation error after 25 rounds, in one process, seeds 0–${seeds - 1}: ${seedErrors.map((e) => e.toFixed(4)).join(', ')}\n`);
  const load = { before: round2(loadBefore), after: round2(loadavg()[0]) };
  process.stdout.write(`1-minute load average: ${load.before} before, ${load.after} after (2 cores: above ~0.5, other work shared the machine and the wall times)\n`);
  process.stdout.write(`${JSON.stringify({ bench: 'federated', nodes: NODES, job: JOB, repeats, results: rows, seed_errors_25_rounds: seedErrors, reference_original_25_rounds_s: ORIGINAL_25_ROUNDS_S, load_average_1min: load, machine: machineInfo() })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:federated: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
