/**
 * Deferred initialisation (torchdistx's `deferred_init`, for our seeded fills; ZeRO's ranks, a
 * pipeline stage and a GGUF file's model build with it, so no weight is held twice): the model is
 * built with every storage it allocates standing in for its values. Such a storage holds no memory,
 * only a recipe of the last fill it received — a constant, host values, or the state of the seeded
 * generator where a normal or uniform fill began. The fills still draw every value from the
 * model's generator in the order a whole build draws them, so each recipe replays exactly the
 * values the whole model would hold, and a rank makes only the ranges it keeps (`valuesOf`).
 *
 * A model whose build computes with its parameters (any op but a fill) is refused with a
 * DeferredInitError naming the op; the caller then builds it whole.
 */
import type { Backend } from './backend.js';
import { registerBackend } from './dispatch.js';
import { BufferRecycler } from './recycler.js';
import type { DType, Device, DeviceBuffer, Storage } from './storage.js';
import { Rng, type RngState } from '../util/rng.js';

/** The device of deferred storages: nothing runs on it but the fills. */
const DEFERRED: Device = 'zero-deferred';

export class DeferredInitError extends Error {}

/** How a deferred storage's values are made: element i of the parameter, for any i. */
type Recipe =
  | { kind: 'unfilled' }
  | { kind: 'const'; value: number }
  | { kind: 'values'; values: Float32Array }
  | { kind: 'normal'; state: RngState; std: number }
  | { kind: 'uniform'; state: RngState; low: number; high: number };

export class DeferredStorage implements Storage<Float32Array> {
  readonly device = DEFERRED;
  readonly dtype = 'float32' as const;
  readonly byteLength = 0;
  recipe: Recipe;

  constructor(readonly size: number, zeroed: boolean) {
    this.recipe = zeroed ? { kind: 'const', value: 0 } : { kind: 'unfilled' };
  }

  private refuse(op: string): never {
    throw new DeferredInitError(`deferred initialisation: the model's build ${op} a parameter; only fills are recorded`);
  }

  /** The fills receive the storage itself (the deferred backend's kernels). */
  get buffer(): DeviceBuffer {
    return this as unknown as DeviceBuffer;
  }

  read(): Promise<Float32Array> {
    return this.refuse('reads');
  }

  readSync(): Float32Array {
    return this.refuse('reads');
  }

  write(values: ArrayLike<number>, offset = 0): void {
    if (offset !== 0 || values.length !== this.size) this.refuse('writes part of');
    this.recipe = { kind: 'values', values: Float32Array.from(values) };
  }

  zero(): void {
    this.recipe = { kind: 'const', value: 0 };
  }

  view(): Storage<Float32Array> {
    return this.refuse('takes a view of');
  }

  dispose(): void {}
}

/** Draws `n` values as the js fill kernels do, only to move the generator past them. */
function skip(rng: Rng, n: number, draw: (rng: Rng) => number): void {
  for (let i = 0; i < n; i++) draw(rng);
}

const normal = (rng: Rng): number => rng.normal();
const uniform = (rng: Rng): number => rng.uniform();

/** The fill kernels on deferred storages: record where the stream stands, then move it on as a real fill would. */
const deferredKernels = {
  name: 'zero-deferred',
  device: DEFERRED,
  dtypes: ['float32'] as readonly DType[],
  fill(x: DeferredStorage, value: number): void {
    x.recipe = { kind: 'const', value };
  },
  fillNormal(x: DeferredStorage, rng: Rng, std: number): void {
    x.recipe = { kind: 'normal', state: rng.getState(), std };
    skip(rng, x.size, normal);
  },
  fillUniform(x: DeferredStorage, rng: Rng, low: number, high: number): void {
    x.recipe = { kind: 'uniform', state: rng.getState(), low, high };
    skip(rng, x.size, uniform);
  },
};

let registered = false;

/** Every storage the engine allocates inside `run` is a deferred one (the recycler is the engine's allocation scope). */
class DeferredAllocations extends BufferRecycler {
  override take(_device: Device, dtype: DType, n: number, zeroed = true): Storage {
    if (dtype !== 'float32') throw new DeferredInitError(`deferred initialisation: the model's build allocates ${dtype}; only float32 parameters are recorded`);
    return new DeferredStorage(n, zeroed);
  }
}

/** Runs `build` with every allocation deferred: the module it returns holds recipes, not values. */
export function buildDeferred<T>(build: () => T): T {
  if (!registered) {
    // Only the three fills: any other op on a deferred storage finds no kernel and says so.
    registerBackend(deferredKernels as unknown as Backend);
    registered = true;
  }
  return new DeferredAllocations().run(build);
}

export function isDeferred(s: Storage): s is DeferredStorage {
  return s instanceof DeferredStorage;
}

/** Elements [from, to) of a deferred storage, made from its recipe exactly as the whole fill made them. */
export function deferredValues(s: DeferredStorage, from: number, to: number): Float32Array {
  const out = new Float32Array(to - from);
  const r = s.recipe;
  switch (r.kind) {
    case 'unfilled': throw new DeferredInitError('deferred initialisation: a parameter was allocated but never filled');
    case 'const': return out.fill(r.value);
    case 'values': return out.set(r.values.subarray(from, to)), out;
    case 'normal': return replay(r.state, from, out, (rng) => rng.normal() * r.std);
    case 'uniform': return replay(r.state, from, out, (rng) => r.low + (r.high - r.low) * rng.uniform());
  }
}

/** The stream from `state`, `from` draws skipped, the next out.length drawn into out (float32-rounded, as the fill stored them). */
function replay(state: RngState, from: number, out: Float32Array, draw: (rng: Rng) => number): Float32Array {
  const rng = new Rng(0);
  rng.setState(state);
  skip(rng, from, draw);
  for (let i = 0; i < out.length; i++) out[i] = draw(rng);
  return out;
}
