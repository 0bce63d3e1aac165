/**
 * The arena as the host sees it during a step. What a strategy sends or receives (gradients,
 * parameters) must be host memory. On the cpu device that is the arena's own memory — the
 * zero-copy views: nothing is read, nothing written back, no copy made. On a GPU the values are
 * read (awaited) the first time a step asks for them; a copy taken for writing goes back to the
 * device when the loop flushes (after the exchange, after the update, after afterStep, after
 * setup), before any kernel touches the arena again. A strategy therefore awaits `grads()` or
 * `params()` once where it starts using them, and the synchronous `gradsNow()` / `paramsNow()`
 * after that (a bucket launcher, a checksum). allreduce --overlap reads the gradients range by
 * range instead (`gradRange`), each as soon as backward has produced it, as DDP copies a bucket.
 */
import type { ParamArena } from '../../nn/arena.js';
import { CPU, deviceMemory, type Storage } from '../../tensor/storage.js';
import { mappedMemory } from '../../tensor/boundary/host_values.js';

type Part = 'params' | 'grads';

/**
 * A copy taken from a GPU arena: its values, and whether a strategy may have changed them. A copy
 * assembled by `gradRange` lists the ranges read so far: only those hold values, and only those
 * go back at the flush.
 */
interface Taken {
  values: Float32Array;
  write: boolean;
  ranges?: Array<[start: number, end: number]>;
}

export class HostArena {
  private readonly taken: Partial<Record<Part, Taken>> = {};
  /** Reads under way (two callers in one step share one read). */
  private readonly reading: Partial<Record<Part, { values: Promise<Float32Array>; write: boolean }>> = {};
  /** Counts flushes: a read that lands after a flush belongs to the hook before it and is dropped. */
  private generation = 0;

  constructor(private readonly arena: ParamArena) {}

  /** The gradients on the host. `write: false` promises not to change them (nothing is written back). */
  grads(write = true): Promise<Float32Array> | Float32Array {
    return this.take('grads', write);
  }

  params(write = true): Promise<Float32Array> | Float32Array {
    return this.take('params', write);
  }

  /**
   * Host memory for parameters that are about to be replaced whole (weights received from a
   * server): the arena itself on the cpu; on a GPU a fresh array, not read first, written back at
   * the flush.
   */
  paramsToOverwrite(): Float32Array {
    const own = this.own('params');
    if (own) return own;
    const held = this.taken.params ?? (this.taken.params = { values: new Float32Array(this.arena.size), write: true });
    held.write = true;
    return held.values;
  }

  /**
   * The gradients [start, end) on the host, for changing (an all-reduced bucket). On the cpu the
   * arena's own memory. On a GPU, once the whole gradients were read, a view of that copy;
   * otherwise that range alone is read (a copy to a staging buffer and its mapping, queued behind
   * the kernels recorded so far, so a range whose gradients are final reads them while later
   * kernels run) into the step's host copy, which `gradsNow()` then hands out: a caller must have
   * awaited every range it uses there. The ranges read go back to the device at the flush.
   */
  gradRange(start: number, end: number): Promise<Float32Array> | Float32Array {
    const own = this.own('grads');
    if (own) return own.subarray(start, end);
    if (this.reading.grads) throw new Error('gradRange: the whole gradients are being read already; use grads()');
    const held = this.taken.grads ?? (this.taken.grads = { values: new Float32Array(this.arena.size), write: true, ranges: [] });
    held.write = true;
    if (!held.ranges) return held.values.subarray(start, end);
    const ranges = held.ranges;
    const generation = this.generation;
    return this.arena.grads.view(start, end - start).read().then((v) => {
      if (generation === this.generation) {
        held.values.set(v, start);
        ranges.push([start, end]);
      }
      return held.values.subarray(start, end);
    });
  }

  /** The gradients taken this step (the cpu arena itself); on a GPU, `grads()` (or every `gradRange` used) must have been awaited first. */
  gradsNow(): Float32Array {
    return this.now('grads');
  }

  paramsNow(): Float32Array {
    return this.now('params');
  }

  /** A cpu storage over the host gradients, for host kernels over them (scaling a bucket). */
  gradStorageNow(): Storage<Float32Array> {
    return this.own('grads') ? this.arena.grads : deviceMemory(CPU).fromHost(this.now('grads'));
  }

  /** Writes the copies taken for writing back to the device and forgets every copy: the device moves on. */
  flush(): void {
    for (const part of ['params', 'grads'] as const) {
      const t = this.taken[part];
      if (t?.write && t.ranges) for (const [a, b] of t.ranges) this.arena[part].write(t.values.subarray(a, b), a);
      else if (t?.write) this.arena[part].write(t.values);
      delete this.taken[part];
      delete this.reading[part];
    }
    this.generation++;
  }

  private take(part: Part, write: boolean): Promise<Float32Array> | Float32Array {
    const own = this.own(part);
    if (own) return own;
    const held = this.taken[part];
    if (held?.ranges) throw new Error(`the ${part} were read range by range this step (gradRange): use those ranges`);
    if (held) {
      held.write ||= write;
      return held.values;
    }
    const reading = this.reading[part];
    if (reading) {
      reading.write ||= write;
      return reading.values;
    }
    const generation = this.generation;
    const values = this.arena[part].read().then((v) => {
      if (generation === this.generation) {
        this.taken[part] = { values: v, write: this.reading[part]?.write ?? write };
        delete this.reading[part];
      }
      return v;
    });
    this.reading[part] = { values, write };
    return values;
  }

  /** The arena's own memory where the host addresses it (the cpu): nothing to read or write back. */
  private own(part: Part): Float32Array | undefined {
    return mappedMemory(this.arena[part]);
  }

  private now(part: Part): Float32Array {
    const own = this.own(part);
    if (own) return own;
    const held = this.taken[part];
    if (!held) throw new Error(`the ${part} of a ${this.arena.device} arena were used on the host before they were read (await hostArena(arena).${part}() first)`);
    return held.values;
  }
}

const hosts = new WeakMap<ParamArena, HostArena>();

/** The host side of an arena (one per arena, so the loop's flush sees what every strategy took). */
export function hostArena(arena: ParamArena): HostArena {
  let h = hosts.get(arena);
  if (!h) hosts.set(arena, (h = new HostArena(arena)));
  return h;
}
