import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { EvalRecord, TrainObserver } from './records.js';
import { type Precision, computePrecision } from '../tensor/precision.js';
import { type DeviceSummary, summarizeDevice } from '../tensor/device_summary.js';
import type { Device } from '../tensor/storage.js';
import { JsonlWriter } from './jsonl.js';

/**
 * events.jsonl: what happened to a run besides its steps — the run starting and ending, workers
 * joining, finishing and being lost, evaluations, saved models; later checkpoints and rebalancing
 * decisions. One JSON object per line, `{schema, schema_version, kind, ..., time}` (docs/EXPERIMENTS.md), written at
 * once (events are rare and matter most when a process is about to die). Like metrics.jsonl the
 * file is shared: every process of a local cluster appends to it with whole-line writes.
 *
 * This file is its one writer: every line goes through EventLog — the run's (RunEvents), the local
 * launcher's (LauncherEvents), the run monitors' `detection` and `fault_injected` lines
 * (src/train/loop/monitors.ts), the coordinator's decisions (src/cluster/coordinator.ts), other ranks'
 * lines relayed by rank 0 (remote/receiver.ts) — and the run's owner empties it (resetEvents).
 */
export const EVENTS_FILE = 'events.jsonl';
/** Schema of one events.jsonl line (docs/METRICS.md); lines before it was named carried `"v": 1`. */
export const EVENTS_SCHEMA = 'smolcluster-events';
export const EVENTS_SCHEMA_VERSION = 1;

/**
 * Set by the local launcher in its workers' environment: the launcher owns the run-level events
 * (it resets events.jsonl and writes run_start / run_end, worker_started / worker_lost), so rank 0
 * does not.
 */
export const RUN_OWNER_ENV = 'SMOLCLUSTER_RUN_OWNER';

/** The fields of each event kind written here; `rank` is the process the event is about. */
export interface EventFields {
  /** The run began (written by whoever owns it: the launcher, or rank 0). */
  run_start: { name: string; workers: number; pid: number; host: string };
  run_end: { status: 'ok' | 'failed'; error?: string };
  /** The launcher spawned a worker process. */
  worker_started: { rank: number; pid: number };
  /** A worker is part of the cluster and about to take its first step. */
  worker_joined: { rank: number; host: string; backend: string; threads: number; precision: Precision; pid: number; device: DeviceSummary; node?: NodeSummary };
  worker_finished: { rank: number; steps: number };
  /** A worker process ended without finishing (killed, crashed, or stopped on an error), seen from outside it. */
  worker_lost: { rank: number; error: string; code: number | null; signal: string | null };
  eval: { rank: number; step: number; test_loss: number; test_accuracy: number | null };
  model_saved: { rank: number; file: string; step: number };
  checkpoint: { rank: number; file: string; step: number };
  /** An elastic run's members changed (a new membership epoch); written by the new group's rank 0. */
  membership: { rank: number; epoch: number; members: number[]; joined: number[]; left: number[]; reason: string; step: number; steps_lost: number };
  /** The local launcher found a process alive but not answering its liveness probe, and killed it to restart it. */
  worker_hung: { rank: number; pid: number; silent_ms: number };
  /** The local launcher restarted a worker that ended without success (--max-restarts). */
  worker_restarted: { rank: number; pid: number; restarts: number };
  /** A ps worker (re)connected to the server and was sent the model state of `version` (written by the server). */
  worker_rejoined: { rank: number; version: number };
  /** The run continued from a checkpoint after `step` steps. */
  resumed: { rank: number; file: string; step: number };
  /** A checkpoint that could not be used (truncated, corrupt, or another run's); the one before it is tried. */
  checkpoint_refused: { rank: number; file: string; error: string };
  /** Load balancing changed the shares of the global batch (by data shard; src/balance/). */
  rebalance: { step: number; policy: string; reason: string; old_shares: number[]; shares: number[]; ms_per_sample: number[] };
  /** Rank 0's account of what another rank streamed to it (metrics/remote), at the end of the run. */
  metric_stream: { rank: number; records: number; dropped: number; refused: number; state: 'ended' | 'streaming' | 'lost' };
}

export type EventKind = keyof EventFields;

/** What a worker's node brings (src/launch/node_info.ts joinSummary), reported at join. */
export interface NodeSummary {
  cores: number;
  memory_gib: number;
  cpu: string;
  gpus: string[];
  /** "name (kind) addresses" for each non-loopback interface. */
  interfaces: string[];
}

/** One line of events.jsonl. */
export interface EventRecord {
  schema?: string;
  /** The schema's version: `schema_version` (with `schema`), or `v` in lines written before they were named. */
  schema_version?: number;
  v?: number;
  kind: string;
  /** ms since the epoch. */
  time: number;
  rank?: number;
  [field: string]: unknown;
}

export function eventsFile(dir: string): string {
  return join(dir, EVENTS_FILE);
}

/** Appends events to one events.jsonl; each `emit` is one whole-line write. */
export class EventLog {
  private readonly out: JsonlWriter;

  /** `reset` empties the file first (the run's owner, at its start). */
  constructor(readonly file: string, opts: { reset?: boolean } = {}) {
    if (opts.reset) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, '');
    }
    this.out = new JsonlWriter(file, 1);
  }

  emit<K extends EventKind>(kind: K, fields: EventFields[K]): EventRecord;
  /** A kind this version does not know: allowed, and readers keep it. */
  emit(kind: string, fields: Record<string, unknown>): EventRecord;
  emit(kind: string, fields: object): EventRecord {
    const record: EventRecord = { schema: EVENTS_SCHEMA, schema_version: EVENTS_SCHEMA_VERSION, kind, ...fields, time: Date.now() };
    this.out.write(record);
    return record;
  }

  /** Appends a line another process wrote (remote/receiver.ts, after checking it) as it stands. */
  relay(record: Record<string, unknown>): void {
    this.out.write(record);
  }

  close(): void {
    this.out.close();
  }
}

/** Empties `dir`'s events.jsonl (the run's owner, at its start), keeping the file: other ranks append to it. */
export function resetEvents(dir: string): void {
  writeFileSync(eventsFile(dir), '');
}

/**
 * Appends one event to `dir`'s events.jsonl if the folder exists (an error before the run's folder
 * was made leaves nothing behind). Never throws: the event log must not hide the error being reported.
 */
export function appendEvent<K extends EventKind>(dir: string, kind: K, fields: EventFields[K]): void {
  try {
    if (!existsSync(dir)) return;
    const log = new EventLog(eventsFile(dir));
    log.emit(kind, fields);
    log.close();
  } catch {
    // best effort
  }
}

/** True when this process's run is owned by the local launcher (RUN_OWNER_ENV). */
export function launcherOwnsRun(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[RUN_OWNER_ENV] === 'launcher';
}

/**
 * A rank's part of events.jsonl: `worker_joined` as it starts its first step (every rank has
 * passed setup, so rank 0 has reset the folder), evaluations (rank 0), and — called by the run —
 * `worker_finished`, `model_saved`; with `owner`, also `run_start` (at once) and `run_end`.
 */
export class RunEvents implements TrainObserver {
  private readonly log: EventLog;

  constructor(
    readonly dir: string,
    private readonly rank: number,
    private readonly info: { workers: number; backend: string; threads: number; owner: boolean; node?: NodeSummary },
  ) {
    this.log = new EventLog(eventsFile(dir));
    if (info.owner) this.log.emit('run_start', { name: basename(dir), workers: info.workers, pid: process.pid, host: hostname() });
  }

  /** `device`: where the loop put the model's parameters (the dashboard's device column). */
  onStart(info: { device: Device }): void {
    this.log.emit('worker_joined', {
      // The precision this rank's ops compute in, read from the engine after the loop set it.
      rank: this.rank, host: hostname(), backend: this.info.backend, threads: this.info.threads, precision: computePrecision(), pid: process.pid,
      device: summarizeDevice(info.device),
      ...(this.info.node ? { node: this.info.node } : {}),
    });
  }

  onEval(r: EvalRecord): void {
    if (this.rank === 0) this.log.emit('eval', { rank: 0, step: r.step, test_loss: r.loss, test_accuracy: r.accuracy, ...(r.perplexity != null ? { test_perplexity: r.perplexity } : {}) });
  }

  finished(steps: number): void {
    this.log.emit('worker_finished', { rank: this.rank, steps });
  }

  modelSaved(file: string, step: number): void {
    this.log.emit('model_saved', { rank: this.rank, file, step });
  }

  checkpointSaved(file: string, step: number): void {
    this.log.emit('checkpoint', { rank: this.rank, file, step });
  }

  checkpointRefused(file: string, error: string): void {
    this.log.emit('checkpoint_refused', { rank: this.rank, file, error });
  }

  onResume(step: number, file: string): void {
    if (this.rank === 0) this.log.emit('resumed', { rank: 0, file, step });
  }

  /** The end of the run, by its owner. */
  end(err?: unknown): void {
    if (!this.info.owner) return;
    this.log.emit('run_end', err === undefined ? { status: 'ok' } : { status: 'failed', error: err instanceof Error ? err.message : String(err) });
  }

  close(): void {
    this.log.close();
  }
}

/**
 * The local launcher's part of events.jsonl: it owns the run, so it resets the file and writes
 * run_start, worker_started (with the pid it spawned), worker_lost for a worker that ended without
 * success (killed by a signal, or exited non-zero), and run_end.
 */
export class LauncherEvents {
  private readonly log: EventLog;
  private firstFailure: string | null = null;

  constructor(readonly dir: string, workers: number) {
    this.log = new EventLog(eventsFile(dir), { reset: true });
    this.log.emit('run_start', { name: basename(dir), workers, pid: process.pid, host: hostname() });
  }

  workerStarted(rank: number, pid: number | undefined): void {
    this.log.emit('worker_started', { rank, pid: pid ?? -1 });
  }

  workerRestarted(rank: number, pid: number | undefined, restarts: number): void {
    this.log.emit('worker_restarted', { rank, pid: pid ?? -1, restarts });
  }

  workerHung(rank: number, pid: number | undefined, silentMs: number): void {
    this.log.emit('worker_hung', { rank, pid: pid ?? -1, silent_ms: Math.round(silentMs) });
  }

  workerExited(rank: number, code: number | null, signal: string | null): void {
    if (code === 0) return;
    const error = signal ? `killed by ${signal}` : `exited with code ${code}`;
    this.firstFailure ??= `worker rank ${rank} ${error}`;
    this.log.emit('worker_lost', { rank, error, code, signal });
  }

  /** `survived`: an elastic run that finished although workers were lost on the way. */
  end(survived = false): void {
    this.log.emit('run_end', this.firstFailure && !survived ? { status: 'failed', error: this.firstFailure } : { status: 'ok' });
    this.log.close();
  }
}
