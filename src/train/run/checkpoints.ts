/**
 * Periodic training checkpoints and resuming from them (docs/CHECKPOINT.md, "Training checkpoints").
 *
 * Every `every` steps the writing rank saves model, optimizer state (with its step count), the
 * modules' random streams and the loop's position — the next step, its epoch and the batch index
 * inside the epoch, which is also the LR schedule's position — to `ckpt-<step>.smolckpt` in `dir`,
 * atomically, and keeps the newest `keep` files. Resuming loads the newest file that is whole and
 * belongs to this run; a truncated, corrupt or foreign file is refused by name and the one before
 * it is tried. Since shuffling is a pure function of (seed, epoch), the position is all the data
 * order needs: a resumed run takes exactly the steps the uninterrupted run would have taken.
 *
 * A strategy whose ranks hold state of their own (Strategy.checkpointing.checkpointBuffers: DiLoCo, local SGD,
 * int8 / PowerSGD error feedback) makes every rank write its own files, with its own parameters,
 * optimizer state and those buffers, under `dir/rank-<r>/`; each rank resumes from its own folder.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError, loadCheckpoint, type NamedBuffers, readModelHeader, readTrainingState, saveCheckpoint } from '../../nn/checkpoint.js';
import type { Module } from '../../nn/module.js';
import type { Optimizer } from '../../nn/optim/optimizer.js';
import { fsyncDir } from '../../util/atomic_file.js';
import { SmolError } from '../../util/errors.js';
import { ensureWritableFolder } from '../../util/writable.js';
import { InterruptedError, type StopRequest } from './interrupt.js';
import type { WatchState } from '../loop/early_stopping.js';

export interface CheckpointOptions {
  /** Folder of the checkpoint files. */
  dir: string;
  /** Save after every N steps (0: never). */
  every: number;
  /** Newest files kept (older ones are deleted after a save). */
  keep: number;
  /** Continue from the newest good checkpoint in this folder; 'auto': in `dir`, if it has one. */
  resume?: string;
}

/** Where the loop stands: `step` steps are done; the next one is batch `batch` of epoch `epoch`. */
export interface LoopPosition {
  step: number;
  epoch: number;
  batch: number;
  /** Batches per epoch of the run that wrote it (absent in older files: this run's): another number of workers has another. */
  batches?: number;
}

/** The loop's part of a checkpoint header (`state`). */
export interface LoopState {
  /** What the run is (model, data and optimizer signature, strategy): a file of another run is foreign. */
  run: string;
  /** Processes of the run that wrote it. */
  workers?: number;
  position: LoopPosition;
  /** The LR schedule is a function of the step: its position is position.step of totalSteps. */
  schedule: { totalSteps: number };
  /** Load balancing: the shares of the global batch (by data shard) of the last step taken. */
  shares?: number[];
  /** The strategy's own state (Strategy.checkpointing.checkpointState), e.g. where each async-ps worker stood. */
  strategy?: Record<string, unknown>;
  /** The evaluation watch (--save-best, early stopping): the best loss, its step and the evaluations since (loop/early_stopping.ts). */
  evaluations?: WatchState;
}

const PATTERN = /^ckpt-(\d{8,})\.smolckpt$/;

export function checkpointFile(dir: string, step: number): string {
  return join(dir, `ckpt-${String(step).padStart(8, '0')}.smolckpt`);
}

/** The checkpoint files in `dir`, newest (highest step) first; [] when the folder does not exist. */
export function listCheckpoints(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => PATTERN.test(n)).sort().reverse().map((n) => join(dir, n));
}

/** Whether `dir` holds a checkpoint: its own files, or those of ranks with state of their own (rank-<r>/). */
export function hasCheckpoints(dir: string): boolean {
  if (listCheckpoints(dir).length > 0) return true;
  if (!existsSync(dir)) return false;
  return readdirSync(dir).some((n) => /^rank-\d+$/.test(n) && listCheckpoints(join(dir, n)).length > 0);
}

/** Refused: no checkpoint of this run could be loaded from the folder --resume names. */
export class ResumeError extends SmolError {
  constructor(readonly dir: string, detail: string) {
    super('RESUME', `--resume ${dir}: ${detail}`);
  }
}

/** What a strategy whose ranks hold state of their own adds to its checkpoints. */
export interface RankState {
  rank: number;
  buffers: (model: Module) => NamedBuffers;
  /** Written by the writing rank into the checkpoint folder after each save (ZeRO's manifest of shards). */
  manifest?: (dir: string) => void;
  /**
   * Tried before the rank's own folder on resume: restores from checkpoints written at another
   * world size (ZeRO resharding), or returns null to load the rank's own file as usual.
   */
  reshard?: (dir: string, model: Module, architecture: unknown, optimizer: Optimizer, run: string, totalSteps: number) => Restored | null;
  /**
   * Written by `savedRanks` ranks, another number than this run's: the rank whose folder this rank
   * resumes from (Strategy.checkpointing.checkpointSourceRank: a pipeline rank takes its stage's
   * folder of the first replica), or null to refuse.
   */
  sourceRank?: (savedRanks: number) => number | null;
}

/** What a resume restored besides model and optimizer. */
export interface Restored {
  position: LoopPosition;
  file: string;
  /** The steps the run that wrote it planned (its LR schedule's length), where recorded. */
  plannedSteps?: number;
  shares?: number[];
  strategy?: Record<string, unknown>;
  evaluations?: WatchState;
}

export class Checkpointer {
  constructor(
    readonly opts: CheckpointOptions,
    /** The run's identity (LoopState.run). */
    private readonly run: string,
    /** Only one rank writes (every rank may read). */
    private readonly writer: boolean,
    /** Told about every file written, and every file refused while resuming. */
    private readonly report: { saved?(file: string, step: number): void; refused?(file: string, why: string): void } = {},
    /** Load balancing's shares in use, saved with every checkpoint. */
    private readonly shares?: () => readonly number[],
    /** This rank's own state (none, or an empty list: rank 0's file serves every rank). */
    private readonly rankState?: RankState,
    /** Processes of this run (saved with every checkpoint; ranks with state of their own must match it to resume). */
    private readonly workers = 1,
    /** Ctrl-C: the step just taken is saved, whatever the interval, and the run stops (interrupt.ts). */
    private readonly stop?: StopRequest,
  ) {
    // At start, not at the first save: an unwritable folder is refused before any training.
    if (writer && opts.every > 0) ensureWritableFolder(opts.dir, '--checkpoint-dir');
  }

  /**
   * After a step: saves when `position.step` is a multiple of `every` (with the strategy's state, if
   * it has one). A GPU model's parameters, buffers and optimizer state are read back first (awaited).
   */
  async afterStep(
    model: Module, architecture: unknown, optimizer: Optimizer, position: LoopPosition, totalSteps: number, strategy?: () => Record<string, unknown> | undefined,
    evaluations?: () => WatchState,
  ): Promise<void> {
    // The writing rank acts on Ctrl-C, after a step all ranks took; the others go on until it leaves
    // (they may be a step ahead). Ranks with state of their own save together or not at all: they
    // keep their last periodic checkpoint.
    const signal = this.writer ? (await this.stop?.poll()) ?? null : null;
    if (signal) {
      const own = (this.rankState?.buffers(model) ?? []).length > 0;
      throw new InterruptedError(signal, position.step, own ? null : await this.save(model, architecture, optimizer, position, totalSteps, strategy, evaluations));
    }
    if (this.opts.every <= 0 || position.step % this.opts.every !== 0) return;
    await this.save(model, architecture, optimizer, position, totalSteps, strategy, evaluations);
  }

  /** Writes this rank's checkpoint of `position` (none on a rank that writes nothing): its file. */
  private async save(
    model: Module, architecture: unknown, optimizer: Optimizer, position: LoopPosition, totalSteps: number, strategy?: () => Record<string, unknown> | undefined,
    evaluations?: () => WatchState,
  ): Promise<string | null> {
    const extra = this.rankState?.buffers(model) ?? [];
    if (!this.writer && extra.length === 0) return null;
    const dir = this.folder(this.opts.dir, extra);
    if (extra.length > 0) ensureWritableFolder(dir, '--checkpoint-dir');
    const file = checkpointFile(dir, position.step);
    const own = strategy?.();
    const state: LoopState = { run: this.run, workers: this.workers, position, schedule: { totalSteps }, ...(this.shares ? { shares: [...this.shares()] } : {}), ...(own ? { strategy: own } : {}), ...(evaluations ? { evaluations: evaluations() } : {}) };
    const values = await readTrainingState(model, optimizer);
    saveCheckpoint(file, model, architecture, optimizer, state as unknown as Record<string, unknown>, extra, values);
    if (this.writer) this.rankState?.manifest?.(this.opts.dir);
    this.prune(dir);
    this.report.saved?.(file, position.step);
    return file;
  }

  /**
   * The strategy state (Strategy.checkpointing.checkpointState) of the newest checkpoint this run would resume
   * from, read before the model exists: a pipeline stage keeps the placement it was saved under.
   * Null when not resuming or nothing is there yet. This rank's folder first, then the shared one.
   */
  peekStrategyState(): Record<string, unknown> | null {
    const resume = this.opts.resume;
    if (resume === undefined) return null;
    const dir = resume === 'auto' ? this.opts.dir : resume;
    const folders = this.rankState ? [this.rankFolder(dir, false), dir] : [dir];
    for (const folder of folders) {
      const [newest] = listCheckpoints(folder);
      if (!newest) continue;
      const state = (readModelHeader(newest).header as { state?: { strategy?: unknown } }).state?.strategy;
      return isRecord(state) ? state : null;
    }
    return null;
  }

  /** `dir` itself, or this rank's folder in it when the rank has state of its own. */
  private folder(dir: string, extra: NamedBuffers): string {
    return extra.length > 0 && this.rankState ? join(dir, `rank-${this.rankState.rank}`) : dir;
  }

  /**
   * Loads the newest good checkpoint into model and optimizer and returns its position and file, or
   * null when there is nothing to resume ('auto' and no file yet). `expected(position)` says whether
   * a position fits this run's plan (null) or why not.
   */
  restore(model: Module, architecture: unknown, optimizer: Optimizer, totalSteps: number): Restored | null {
    const resume = this.opts.resume;
    if (resume === undefined) return null;
    const resharded = this.rankState?.reshard?.(resume === 'auto' ? this.opts.dir : resume, model, architecture, optimizer, this.run, totalSteps);
    if (resharded) return resharded;
    const extra = this.rankState?.buffers(model) ?? [];
    const dir = extra.length > 0 ? this.rankFolder(resume === 'auto' ? this.opts.dir : resume, true) : this.folder(resume === 'auto' ? this.opts.dir : resume, extra);
    const files = listCheckpoints(dir);
    if (files.length === 0) {
      if (resume === 'auto') return null;
      throw new ResumeError(dir, 'no checkpoint files (ckpt-<step>.smolckpt) in this folder');
    }
    const refused: string[] = [];
    for (const file of files) {
      try {
        const header = loadCheckpoint(file, model, architecture, optimizer, extra);
        const state = header.state as unknown as LoopState;
        if (state.run !== this.run) throw new CheckpointError(file, `belongs to another run (${String(state.run)}), not this one (${this.run})`);
        if (state.shares !== undefined && !validShares(state.shares)) throw new CheckpointError(file, `its batch shares ${JSON.stringify(state.shares).slice(0, 80)} are not fractions summing to 1`);
        return {
          position: state.position, file, ...(typeof state.schedule?.totalSteps === 'number' ? { plannedSteps: state.schedule.totalSteps } : {}), ...(state.shares ? { shares: state.shares } : {}), ...(isRecord(state.strategy) ? { strategy: state.strategy } : {}),
          ...(isRecord(state.evaluations) ? { evaluations: state.evaluations } : {}),
        };
      } catch (err) {
        if (!(err instanceof CheckpointError)) throw err;
        refused.push(err.message);
        this.report.refused?.(file, err.message);
      }
    }
    throw new ResumeError(dir, `every checkpoint was refused: ${refused.join('; ')}`);
  }

  /**
   * The folder this rank resumes from. Ranks with state of their own resume from their own folders,
   * which only the same number of ranks has; written by another number, a strategy may name the
   * rank whose folder holds this rank's state (RankState.sourceRank); otherwise (and with `refuse`)
   * another number is refused, not half-resumed.
   */
  private rankFolder(dir: string, refuse: boolean): string {
    const own = join(dir, `rank-${this.rankState!.rank}`);
    if (!existsSync(dir)) return own;
    const ranks = readdirSync(dir).filter((n) => /^rank-\d+$/.test(n) && listCheckpoints(join(dir, n)).length > 0).length;
    if (ranks === 0 || ranks === this.workers) return own;
    const source = this.rankState!.sourceRank?.(ranks) ?? null;
    if (source !== null) return join(dir, `rank-${source}`);
    if (!refuse) return own;
    throw new ResumeError(dir, `holds the checkpoints of ${ranks} ranks, each with state of its own, and this run has ${this.workers}: resume it on ${ranks}`);
  }

  private prune(dir: string): void {
    const files = listCheckpoints(dir);
    for (const old of files.slice(Math.max(1, this.opts.keep))) rmSync(old, { force: true });
    if (files.length > this.opts.keep) fsyncDir(dir);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function validShares(s: unknown): s is number[] {
  if (!Array.isArray(s) || s.length === 0 || !s.every((x) => typeof x === 'number' && x >= 0 && x <= 1)) return false;
  return Math.abs(s.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-4;
}
