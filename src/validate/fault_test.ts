/**
 * `smolcluster fault-test`: real clusters with real faults. Each scenario launches a local cluster
 * (`train --workers N`, the same launcher and worker processes as any run) with one fault injected
 * inside one worker (faults.ts), then reads the run's events.jsonl: the fault's own
 * `fault_injected` record, and what the run's monitors (monitors.ts — the ones guarding every run)
 * detected, which rule fired, which rank it named, and when. A fault counts as detected when a
 * rule it should trip names the faulty rank at or after the injection.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FAULT_ENV } from '../train/loop/faults.js';
import { eventsFile } from '../metrics/events.js';
import type { Rule } from '../train/loop/monitors.js';
import { type EventLine, readEvents, scenarioOutcome, stepsRecordedSince } from './fault_outcome.js';
import { readStepLines } from './run_file.js';
import { table } from './text.js';

export const FAULT_TEST_SCHEMA = 'smolcluster-fault-test';
export const FAULT_TEST_SCHEMA_VERSION = 1;

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface ScenarioParams {
  rank: number;
  step: number;
  slowMs: number;
}

export interface Scenario {
  name: string;
  what: string;
  spec(p: ScenarioParams): string;
  /** Rules that detect it. */
  expect: Rule[];
}

export const SCENARIOS: readonly Scenario[] = [
  { name: 'slow', what: 'slow worker (sleeps every step)', spec: (p) => `slow:rank=${p.rank}:ms=${p.slowMs}:step=${p.step}`, expect: ['straggler'] },
  { name: 'corrupt-nan', what: 'gradient corruption (one NaN)', spec: (p) => `corrupt:rank=${p.rank}:kind=nan:step=${p.step}`, expect: ['non-finite-gradient'] },
  {
    name: 'corrupt-scale', what: 'gradient corruption (×1000)', spec: (p) => `corrupt:rank=${p.rank}:kind=scale:factor=1000:step=${p.step}`,
    expect: ['gradient-outlier', 'non-finite-gradient'],
  },
  {
    name: 'corrupt-noise', what: 'gradient corruption (noise, std 10)', spec: (p) => `corrupt:rank=${p.rank}:kind=noise:std=10:step=${p.step}`,
    expect: ['gradient-outlier', 'non-finite-gradient'],
  },
  { name: 'hang', what: 'hung worker (blocks, sockets open)', spec: (p) => `hang:rank=${p.rank}:step=${p.step}`, expect: ['peer-timeout'] },
  { name: 'kill', what: 'killed worker (SIGKILL)', spec: (p) => `kill:rank=${p.rank}:step=${p.step}`, expect: ['peer-lost', 'peer-timeout'] },
];

/** One fault of each kind: slow worker, gradient corruption, hung worker, killed worker. */
export const QUICK_SCENARIOS = ['slow', 'corrupt-nan', 'hang', 'kill'] as const;

export interface FaultTestOptions {
  scenarios: readonly string[];
  steps: number;
  workers: number;
  /** The faulty rank. */
  rank: number;
  /** The step the fault starts at (default: a third of the way in). */
  faultStep?: number;
  /** Peer deadline of every run (seconds): how long a hung worker takes to be named. */
  timeoutSec: number;
  slowMs: number;
  batchSize: number;
  experimentsDir: string;
  /**
   * With a tolerance (MiniCluster's `fault-test --tolerance`), a fault-free run of the same seed
   * runs first and each scenario's loss curve is compared with it step by step (loss_divergence).
   */
  lossTolerance?: number;
  /** Called with a line as each scenario starts and ends. */
  progress?: (line: string) => void;
}

export interface ScenarioResult {
  scenario: string;
  what: string;
  fault: string;
  faulty_rank: number;
  /** The run recorded a step or injected its fault in this invocation; false: it did not run (a failure). */
  ran: boolean;
  /** Why it did not run (the run's error line), null when it ran. */
  not_run_reason: string | null;
  injected: boolean;
  injected_step: number | null;
  detected: boolean;
  rule: Rule | null;
  severity: string | null;
  named_ranks: number[];
  /** The rank whose monitors recorded the detection. */
  detected_by: number | null;
  detected_step: number | null;
  time_to_detection_ms: number | null;
  detail: string | null;
  /** Rules that fired without counting as this fault's detection. */
  other_detections: Array<{ rule: string; ranks: number[]; step: number | null }>;
  exit_code: number | null;
  /** The run ended early (a fatal detection stops the cluster). */
  run_stopped: boolean;
  /** The launcher's one-line error, if the cluster failed. */
  cluster_error: string | null;
  wall_ms: number;
  experiment_dir: string;
  log: string;
  /** With lossTolerance: the loss against the fault-free run's (a reading beside the monitors, not a detection). */
  loss_divergence?: LossDivergence;
}

export interface LossDivergence {
  tolerance: number;
  steps_compared: number;
  max_rel_delta: number | null;
  /** The first step whose loss differs from the fault-free run's by more than the tolerance. */
  first_step_beyond: number | null;
  beyond_tolerance: boolean;
}

/** The options a report was made with, under the snake_case keys of every file smolcluster writes. */
export interface FaultTestSettings {
  steps: number;
  workers: number;
  rank: number;
  fault_step: number;
  timeout_sec: number;
  slow_ms: number;
  batch_size: number;
  experiments_dir: string;
  loss_tolerance?: number;
}

export interface FaultTestReport {
  schema: typeof FAULT_TEST_SCHEMA;
  schema_version: typeof FAULT_TEST_SCHEMA_VERSION;
  settings: FaultTestSettings;
  scenarios: ScenarioResult[];
  summary: { total: number; detected: number; missed: number; verdict: 'pass' | 'fail' };
  /** MiniCluster's names for the summary, so its `jq '.num_detected / .num_faults'` works. */
  num_faults: number;
  num_detected: number;
  num_missed: number;
  /** Scenarios whose run never started training (counted as missed). */
  num_not_run: number;
  detection_rate: number;
  started_at: string;
  ended_at: string;
  start_timestamp: string;
  end_timestamp: string;
  /** The fault-free run the loss curves were compared with (with lossTolerance). */
  reference_run?: { experiment_dir: string; exit_code: number | null; steps: number };
  host: { hostname: string; cpus: number; node: string };
}

export function faultStepFor(steps: number): number {
  return Math.max(1, Math.floor(steps / 3));
}

export async function runFaultTest(o: FaultTestOptions): Promise<FaultTestReport> {
  const startedAt = new Date();
  const step = o.faultStep ?? faultStepFor(o.steps);
  mkdirSync(o.experimentsDir, { recursive: true });
  const results: ScenarioResult[] = [];
  let reference: { dir: string; losses: Map<number, number>; exitCode: number | null } | null = null;
  if (o.lossTolerance !== undefined) {
    o.progress?.('fault-test: fault-free reference run (for --tolerance) ...');
    const run = await launchRun('fault-test-reference', null, { ...o, step });
    reference = { dir: run.dir, losses: lossByStep(run.dir), exitCode: run.exitCode };
  }
  for (const name of o.scenarios) {
    const s = SCENARIOS.find((x) => x.name === name);
    if (!s) throw new Error(`unknown scenario "${name}" (expected ${SCENARIOS.map((x) => x.name).join(', ')})`);
    o.progress?.(`fault-test: ${s.name}: ${s.what} on rank ${o.rank} from step ${step} ...`);
    const r = await runScenario(s, { ...o, step });
    if (reference) r.loss_divergence = lossDivergence(reference.losses, lossByStep(r.experiment_dir), o.lossTolerance!);
    o.progress?.(`fault-test: ${s.name}: ${r.detected ? `detected by ${r.rule} naming rank ${r.named_ranks.join(', ')} after ${r.time_to_detection_ms} ms` : 'MISSED'}`);
    results.push(r);
  }
  const detected = results.filter((r) => r.detected).length;
  const settings: FaultTestSettings = {
    steps: o.steps, workers: o.workers, rank: o.rank, fault_step: step, timeout_sec: o.timeoutSec, slow_ms: o.slowMs,
    batch_size: o.batchSize, experiments_dir: o.experimentsDir, ...(o.lossTolerance !== undefined ? { loss_tolerance: o.lossTolerance } : {}),
  };
  const [started, ended] = [startedAt.toISOString(), new Date().toISOString()];
  return {
    schema: FAULT_TEST_SCHEMA,
    schema_version: FAULT_TEST_SCHEMA_VERSION,
    settings,
    scenarios: results,
    summary: { total: results.length, detected, missed: results.length - detected, verdict: detected === results.length ? 'pass' : 'fail' },
    num_faults: results.length,
    num_detected: detected,
    num_missed: results.length - detected,
    num_not_run: results.filter((r) => !r.ran).length,
    detection_rate: results.length > 0 ? detected / results.length : 0,
    started_at: started,
    ended_at: ended,
    start_timestamp: started,
    end_timestamp: ended,
    ...(reference ? { reference_run: { experiment_dir: reference.dir, exit_code: reference.exitCode, steps: reference.losses.size } } : {}),
    host: { hostname: os.hostname(), cpus: os.cpus().length, node: process.version },
  };
}

/** One local cluster run of the fault-test workload, with `fault` injected (null: none). */
async function launchRun(
  name: string, fault: string | null, o: FaultTestOptions & { step: number },
): Promise<{ dir: string; log: string; exitCode: number | null; wallMs: number; startedAt: number }> {
  const dir = join(o.experimentsDir, name);
  const log = join(o.experimentsDir, `${name}.log`);
  // Every launch starts fresh: an earlier invocation's folder would be refused as "already holds a
  // run", and its events must never be read as this one's.
  rmSync(dir, { recursive: true, force: true });
  rmSync(log, { force: true });
  const args = [
    CLI, 'train', '--workers', String(o.workers), '--dataset', 'synthetic-regression', '--model', 'mlp', '--hidden', '32',
    '--optimizer', 'adam', '--lr', '0.01', '--schedule', 'constant', '--batch-size', String(o.batchSize),
    '--epochs', String(o.steps), '--max-steps', String(o.steps), '--threads', '1', '--timeout', String(o.timeoutSec),
    '--checksum-every', '0', '--name', name, '--experiments-dir', o.experimentsDir, ...(fault ? ['--fault', fault] : []),
  ];
  const { [FAULT_ENV]: _ignored, ...env } = process.env;
  const t0 = Date.now();
  const startedAt = t0;
  const fd = openSync(log, 'w');
  // Its own process group, so whatever is left at the deadline (launcher and workers) goes at once.
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  // Start-up, the steps, a peer deadline, the launcher's grace for a hung worker, and slack for load.
  const deadlineMs = 60_000 + o.timeoutSec * 3000 + o.steps * (o.slowMs + 50);
  const exitCode = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => killGroup(child.pid), deadlineMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  killGroup(child.pid); // a hung worker outliving its launcher
  return { dir, log, exitCode, wallMs: Date.now() - t0, startedAt };
}

async function runScenario(s: Scenario, o: FaultTestOptions & { step: number }): Promise<ScenarioResult> {
  const fault = s.spec({ rank: o.rank, step: o.step, slowMs: o.slowMs });
  const { dir, log, exitCode, wallMs, startedAt } = await launchRun(`fault-test-${s.name}`, fault, o);
  const output = existsSync(log) ? readFileSync(log, 'utf8') : '';
  const { ran, notRunReason, injected, hit, others } = scenarioOutcome({
    events: readEvents(eventsFile(dir)), stepsRecorded: stepsRecordedSince(join(dir, 'metrics.jsonl'), startedAt), since: startedAt,
    fault, rank: o.rank, expect: s.expect, log: output, exitCode,
  });
  const clusterError = output.split('\n').find((l) => l.startsWith('smolcluster: error: worker rank')) ?? null;
  return {
    scenario: s.name,
    what: s.what,
    fault,
    faulty_rank: o.rank,
    ran,
    not_run_reason: notRunReason,
    injected: injected !== null,
    injected_step: injected?.step ?? null,
    detected: hit !== null,
    rule: hit?.rule ?? null,
    severity: hit?.severity ?? null,
    named_ranks: hit?.ranks ?? [],
    detected_by: hit?.observer ?? null,
    detected_step: hit?.step ?? null,
    time_to_detection_ms: hit && injected ? hit.time - injected.time : null,
    detail: hit?.detail ?? null,
    other_detections: others.map((e: EventLine) => ({ rule: e.rule!, ranks: e.ranks ?? [], step: e.step })),
    exit_code: exitCode,
    run_stopped: exitCode !== 0,
    cluster_error: clusterError?.replace(/^smolcluster: error: /, '') ?? null,
    wall_ms: wallMs,
    experiment_dir: dir,
    log,
  };
}

/** Rank 0's loss at each step of a run (the global-batch loss every rank agrees on); none if the run left no records. */
function lossByStep(dir: string): Map<number, number> {
  const losses = new Map<number, number>();
  try {
    for (const l of readStepLines(join(dir, 'metrics.jsonl'))) if (l.rank === 0) losses.set(l.step, l.loss);
  } catch {
    // a run that died before its first step: nothing to compare
  }
  return losses;
}

/** Step by step, how far a run's loss is from the fault-free run's, relative to the latter. */
export function lossDivergence(reference: Map<number, number>, run: Map<number, number>, tolerance: number): LossDivergence {
  let max: number | null = null;
  let first: number | null = null;
  let compared = 0;
  for (const [step, loss] of [...run].sort((a, b) => a[0] - b[0])) {
    const ref = reference.get(step);
    if (ref === undefined) continue;
    compared++;
    const rel = !Number.isFinite(loss) ? Infinity : ref === 0 ? (loss === 0 ? 0 : Infinity) : Math.abs(loss - ref) / Math.abs(ref);
    max = Math.max(max ?? 0, rel);
    if (rel > tolerance && first === null) first = step;
  }
  return { tolerance, steps_compared: compared, max_rel_delta: max, first_step_beyond: first, beyond_tolerance: first !== null };
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is gone
  }
}

export function formatFaultTest(r: FaultTestReport): string {
  const rows = r.scenarios.map((s) => [
    s.scenario,
    !s.ran ? 'did not run' : s.injected ? `rank ${s.faulty_rank}, step ${s.injected_step}` : 'not injected',
    s.detected ? 'yes' : s.ran ? 'MISSED' : 'NOT RUN',
    s.rule ?? '-',
    s.named_ranks.length ? `rank ${s.named_ranks.join(', ')}` : '-',
    s.detected_by === null ? '-' : `rank ${s.detected_by}`,
    s.time_to_detection_ms === null ? '-' : `${s.time_to_detection_ms} ms`,
    s.run_stopped ? `stopped (exit ${s.exit_code ?? 'killed'})` : 'completed',
  ]);
  const lines = [
    ...table(['fault', 'injected', 'detected', 'rule', 'named', 'by', 'time to detect', 'run'], rows, ['l', 'l', 'l', 'l', 'l', 'l', 'r', 'l']),
    '',
    ...r.scenarios.map((s) => `${s.scenario}: ${s.fault} — ${!s.ran ? `did not run: ${s.not_run_reason}` : s.detail ?? (s.injected ? 'no monitor named the faulty rank' : 'the fault never fired')}` +
      (s.other_detections.length ? ` (also: ${s.other_detections.map((d) => `${d.rule} rank ${d.ranks.join(', ')}`).join('; ')})` : '')),
    ...r.scenarios.flatMap((s) => (s.loss_divergence ? [lossLine(s.scenario, s.loss_divergence)] : [])),
    '',
    `${r.summary.detected}/${r.summary.total} faults detected${r.summary.missed ? `; MISSED: ${r.scenarios.filter((s) => !s.detected).map((s) => s.scenario).join(', ')}` : ''}` +
      (r.num_not_run ? `; NOT RUN: ${r.scenarios.filter((s) => !s.ran).map((s) => s.scenario).join(', ')}` : ''),
  ];
  return `${lines.join('\n')}\n`;
}

function lossLine(scenario: string, d: LossDivergence): string {
  const max = d.max_rel_delta === null ? 'n/a' : d.max_rel_delta.toPrecision(3);
  return `${scenario}: loss vs the fault-free run over ${d.steps_compared} steps: max relative delta ${max}` +
    (d.beyond_tolerance ? `, beyond the tolerance ${d.tolerance} from step ${d.first_step_beyond}` : `, within the tolerance ${d.tolerance}`);
}
