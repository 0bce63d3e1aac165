/**
 * The training state an elastic run keeps in memory so that it can go back to the last step every
 * member finished (Horovod elastic's State: commit, restore): parameters, buffers, optimizer state
 * and step count, and the data cursor. A commit after every step costs one copy of the arenas;
 * the two newest commits are kept because members may stand one step apart when a collective
 * breaks (one finished the step, another did not).
 */
import type { CursorPosition } from '../data/elastic_cursor.js';
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../nn/optim/optimizer.js';

interface Snapshot {
  /** Steps done. */
  step: number;
  cursor: CursorPosition;
  optimizerSteps: number;
  /** Parameters, then buffers, then optimizer state. */
  floats: Float32Array[];
}

export class ElasticState {
  private snapshots: Snapshot[] = [];

  constructor(private readonly model: Module, private readonly optimizer: Optimizer) {}

  /** The buffers that make up the state, in a fixed order (what a new member receives). */
  buffers(): Float32Array[] {
    return [this.model.arena().params.readSync(), ...this.model.namedBuffers().map(([, b]) => b), ...this.optimizer.stateBuffers()];
  }

  /** The newest committed step (-1 before the first commit). */
  get committedStep(): number {
    return this.snapshots[0]?.step ?? -1;
  }

  get committedCursor(): CursorPosition | undefined {
    return this.snapshots[0]?.cursor;
  }

  commit(step: number, cursor: CursorPosition): void {
    const reuse = this.snapshots.length >= 2 ? this.snapshots.pop()!.floats : null;
    const floats = this.buffers().map((b, i) => {
      const copy = reuse?.[i] ?? new Float32Array(b.length);
      copy.set(b);
      return copy;
    });
    this.snapshots.unshift({ step, cursor: { ...cursor }, optimizerSteps: this.optimizer.steps, floats });
  }

  /** Puts the model and optimizer back to the commit of `step`; returns its cursor, or null when no commit has it. */
  restore(step: number): CursorPosition | null {
    const s = this.snapshots.find((x) => x.step === step);
    if (!s) return null;
    this.buffers().forEach((b, i) => b.set(s.floats[i]));
    this.optimizer.restoreSteps(s.optimizerSteps);
    this.snapshots = this.snapshots.filter((x) => x.step <= step);
    return { ...s.cursor };
  }
}
