/**
 * The training state an elastic run keeps in memory so that it can go back to the last step every
 * member finished (Horovod elastic's State: commit, restore): parameters, buffers, optimizer state
 * and step count, and the data cursor. A commit after every step costs one copy of the arenas;
 * the two newest commits are kept because members may stand one step apart when a collective
 * breaks (one finished the step, another did not). The commits live in host memory whatever the
 * model's device: each commit reads an owned copy of the state (awaited on a GPU) and a rollback
 * writes it back.
 */
import type { CursorPosition } from '../../data/elastic_cursor.js';
import type { Module } from '../../nn/module.js';
import type { Optimizer } from '../../nn/optim/optimizer.js';
import type { Storage } from '../../tensor/storage.js';
import type { StorageCollectives } from '../../parallel/boundary/storage_collectives.js';

interface Snapshot {
  /** Steps done. */
  step: number;
  cursor: CursorPosition;
  optimizerSteps: number;
  /** Parameters, then buffers, then optimizer state, in host memory. */
  floats: Float32Array[];
}

export class ElasticState {
  private snapshots: Snapshot[] = [];

  constructor(private readonly model: Module, private readonly optimizer: Optimizer) {}

  /** The storages that make up the state, in a fixed order: parameters, buffers, optimizer state. */
  private storages(): Storage<Float32Array>[] {
    return [this.model.arena().params, ...this.model.namedBufferStorages().map(([, b]) => b), ...this.optimizer.stateStorages()];
  }

  /**
   * The hand-over: every member ends with `source`'s state (what a new member receives), storage
   * by storage through the device boundary (in place on the cpu; read, sent and written back on a GPU).
   */
  async broadcastFrom(collectives: StorageCollectives, source: number): Promise<void> {
    for (const s of this.storages()) await collectives.broadcast(s, source);
  }

  /** The newest committed step (-1 before the first commit). */
  get committedStep(): number {
    return this.snapshots[0]?.step ?? -1;
  }

  get committedCursor(): CursorPosition | undefined {
    return this.snapshots[0]?.cursor;
  }

  /** Keeps the state after `step` steps. On a GPU the state is read to the host (awaited): a copy of it each step. */
  async commit(step: number, cursor: CursorPosition): Promise<void> {
    if (this.snapshots.length >= 2) this.snapshots.pop();
    const floats = await Promise.all(this.storages().map((s) => s.read()));
    this.snapshots.unshift({ step, cursor: { ...cursor }, optimizerSteps: this.optimizer.steps, floats });
  }

  /** Puts the model and optimizer back to the commit of `step` (written to their device); returns its cursor, or null when no commit has it. */
  restore(step: number): CursorPosition | null {
    const s = this.snapshots.find((x) => x.step === step);
    if (!s) return null;
    this.storages().forEach((b, i) => b.write(s.floats[i]));
    this.optimizer.restoreSteps(s.optimizerSteps);
    this.snapshots = this.snapshots.filter((x) => x.step <= step);
    return { ...s.cursor };
  }
}
