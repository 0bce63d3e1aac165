/**
 * `smolcluster fault-test`: real clusters with real faults. Each scenario launches a local cluster
 * (`train --workers N`, the same launcher and worker processes as any run) with one fault injected
 * inside one worker (faults.ts), then reads the run's events.jsonl: the fault's own
 * `fault_injected` record, and what the run's monitors (monitors.ts — the ones guarding every run)
 * detected, which rule fired, which rank it named, and when. A fault counts as detected when a
 * rule it should trip names the faulty rank at or after the injection.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FAULT_ENV } from '../train/faults.js';
import { eventsFile } from '../metrics/events.js';
import type { Rule } from '../train/monitors.js';
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
  /** Called with a line as each scenario starts and ends. */
  progress?: (line: string) => void;
}

interface EventLine {
  kind: 'detection' | 'fault_injected';
  time: number;
  step: number | null;
  rule?: Rule;
  severity?: string;
  ranks?: number[];
  observer?: number;
  detail: string;
  spec?: string;
  rank?: number;
}

export interface ScenarioResult {
  scenario: string;
  what: string;
  fault: string;
  faulty_rank: number;
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
}

export interface FaultTestReport {
  schema: typeof FAULT_TEST_SCHEMA;
  schema_version: typeof FAULT_TEST_SCHEMA_VERSION;
  settings: Omit<FaultTestOptions, 'progress' | 'scenarios'> & { fault_step: number };
  scenarios: ScenarioResult[];
  summary: { total: number; detected: number; missed: number; verdict: 'pass' | 'fail' };
  started_at: string;
  ended_at: string;
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
  for (const name of o.scenarios) {
    const s = SCENARIOS.find((x) => x.name === name);
    if (!s) throw new Error(`unknown scenario "${name}" (expected ${SCENARIOS.map((x) => x.name).join(', ')})`);
    o.progress?.(`fault-test: ${s.name}: ${s.what} on rank ${o.rank} from step ${step} ...`);
    const r = await runScenario(s, { ...o, step });
    o.progress?.(`fault-test: ${s.name}: ${r.detected ? `detected by ${r.rule} naming rank ${r.named_ranks.join(', ')} after ${r.time_to_detection_ms} ms` : 'MISSED'}`);
    results.push(r);
  }
  const detected = results.filter((r) => r.detected).length;
  const { progress: _p, scenarios: _s, ...settings } = o;
  return {
    schema: FAULT_TEST_SCHEMA,
    schema_version: FAULT_TEST_SCHEMA_VERSION,
    settings: { ...settings, fault_step: step },
    scenarios: results,
    summary: { total: results.length, detected, missed: results.length - detected, verdict: detected === results.length ? 'pass' : 'fail' },
    started_at: startedAt.toISOString(),
    ended_at: new Date().toISOString(),
    host: { hostname: os.hostname(), cpus: os.cpus().length, node: process.version },
  };
}

async function runScenario(s: Scenario, o: FaultTestOptions & { step: number }): Promise<ScenarioResult> {
  const name = `fault-test-${s.name}`;
  const dir = join(o.experimentsDir, name);
  const log = join(o.experimentsDir, `${name}.log`);
  const fault = s.spec({ rank: o.rank, step: o.step, slowMs: o.slowMs });
  const args = [
    CLI, 'train', '--workers', String(o.workers), '--dataset', 'synthetic-regression', '--model', 'mlp', '--hidden', '32',
    '--optimizer', 'adam', '--lr', '0.01', '--schedule', 'constant', '--batch-size', String(o.batchSize),
    '--epochs', String(o.steps), '--max-steps', String(o.steps), '--threads', '1', '--timeout', String(o.timeoutSec),
    '--checksum-every', '0', '--name', name, '--experiments-dir', o.experimentsDir, '--fault', fault,
  ];
  const { [FAULT_ENV]: _ignored, ...env } = process.env;
  const t0 = Date.now();
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
  const wallMs = Date.now() - t0;
  const events = readEvents(eventsFile(dir));
  const injected = events.find((e) => e.kind === 'fault_injected' && e.spec === fault) ?? null;
  const detections = events.filter((e) => e.kind === 'detection');
  const counts = (e: EventLine): boolean =>
    injected !== null && s.expect.includes(e.rule!) && (e.ranks ?? []).includes(o.rank) && e.time >= injected.time && (e.step === null || e.step >= injected.step!);
  const hit = detections.filter(counts).sort((a, b) => a.time - b.time)[0] ?? null;
  const output = existsSync(log) ? readFileSync(log, 'utf8') : '';
  const clusterError = output.split('\n').find((l) => l.startsWith('smolcluster: error: worker rank')) ?? null;
  return {
    scenario: s.name,
    what: s.what,
    fault,
    faulty_rank: o.rank,
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
    other_detections: detections.filter((e) => e !== hit && !counts(e)).map((e) => ({ rule: e.rule!, ranks: e.ranks ?? [], step: e.step })),
    exit_code: exitCode,
    run_stopped: exitCode !== 0,
    cluster_error: clusterError?.replace(/^smolcluster: error: /, '') ?? null,
    wall_ms: wallMs,
    experiment_dir: dir,
    log,
  };
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is gone
  }
}

function readEvents(file: string): EventLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').flatMap((line) => {
    try {
      return line.trim() ? [JSON.parse(line) as EventLine] : [];
    } catch {
      return [];
    }
  });
}

export function formatFaultTest(r: FaultTestReport): string {
  const rows = r.scenarios.map((s) => [
    s.scenario,
    s.injected ? `rank ${s.faulty_rank}, step ${s.injected_step}` : 'not injected',
    s.detected ? 'yes' : 'MISSED',
    s.rule ?? '-',
    s.named_ranks.length ? `rank ${s.named_ranks.join(', ')}` : '-',
    s.detected_by === null ? '-' : `rank ${s.detected_by}`,
    s.time_to_detection_ms === null ? '-' : `${s.time_to_detection_ms} ms`,
    s.run_stopped ? `stopped (exit ${s.exit_code ?? 'killed'})` : 'completed',
  ]);
  const lines = [
    ...table(['fault', 'injected', 'detected', 'rule', 'named', 'by', 'time to detect', 'run'], rows, ['l', 'l', 'l', 'l', 'l', 'l', 'r', 'l']),
    '',
    ...r.scenarios.map((s) => `${s.scenario}: ${s.fault} — ${s.detail ?? (s.injected ? 'no monitor named the faulty rank' : 'the fault never fired')}` +
      (s.other_detections.length ? ` (also: ${s.other_detections.map((d) => `${d.rule} rank ${d.ranks.join(', ')}`).join('; ')})` : '')),
    '',
    `${r.summary.detected}/${r.summary.total} faults detected${r.summary.missed ? `; MISSED: ${r.scenarios.filter((s) => !s.detected).map((s) => s.scenario).join(', ')}` : ''}`,
  ];
  return `${lines.join('\n')}\n`;
}
