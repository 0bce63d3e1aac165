import { deviceMemory, type DType, type Device, type Storage } from './storage.js';
import { activeRecycler } from './recycler.js';

/**
 * Reuse of large buffers the engine knows are dead: intermediate gradients once autograd has
 * propagated them, and the cross-entropy's probabilities once its backward has run. A training
 * step allocates the same large buffers every time (a language model's logits-sized gradient is
 * 100–200 MB); glibc serves allocations above 32 MB with a fresh mmap, so each of them costs page
 * faults on first touch and an munmap later — measured at ~4× the cost of writing into a reused
 * buffer. PyTorch keeps a caching allocator for the same reason.
 *
 * Only buffers handed out by `allocBuf` while no BufferRecycler was active are accepted back
 * (`isPoolable`), so nothing a recycler, an arena or a caller owns can enter the pool. Inside a
 * recycler's run, a buffer that recycler lent goes back to it instead (free again in the same run). What was
 * given back two backward passes ago and not taken since is dropped, so a change of shapes does
 * not keep old buffers alive.
 *
 * The pool holds storages and is per device: a storage is only ever handed out again on the device
 * (and with the dtype and size) it was made for. Only host memory (a device whose allocator maps
 * its storages for the host: the cpu) is pooled, since the page faults are the host's. A device
 * with memory of its own (webgpu's caching allocator) gets a dead buffer of any size back through
 * `dispose()`, and the pool holds none of them: creating a GPU buffer costs a driver call whatever
 * its size.
 */

/** Buffers below this many elements are left to the system allocator (its heap reuses them cheaply). */
export const POOL_MIN_ELEMENTS = 1 << 20;

/** Large buffers allocBuf made that may come back (weakly held: a forgotten one is just collected). */
const poolable = new WeakSet<Storage>();
/** Buffers allocBuf made in a device's own memory (not the host's), which dispose() returns to that device's allocator. */
const deviceOwned = new WeakSet<Storage>();
/** Given back since the last backward pass started. */
let current = new Map<string, Storage[]>();
/** Given back during the pass before; dropped when the next pass starts. */
let previous = new Map<string, Storage[]>();

/** Whether the device's storages are host memory (its allocator maps them): the ones the pool keeps. */
function inHostMemory(device: Device): boolean {
  return deviceMemory(device).hostMemory !== undefined;
}

/** Pools per device: the device leads the key. */
function storageKey(device: Device, dtype: DType, n: number): string {
  return `${device}/${dtype}/${n}`;
}

let enabled = true;

/** Switches reuse off (or back on): the pool's tests compare both. Off empties the pool. */
export function setPoolEnabled(on: boolean): void {
  enabled = on;
  if (!on) {
    current = new Map();
    previous = new Map();
  }
}

/** A dead buffer of this kind, if the pool has one (not zeroed: the caller decides). */
export function takePooled(device: Device, dtype: DType, n: number): Storage | null {
  if (!enabled || n < POOL_MIN_ELEMENTS || !inHostMemory(device)) return null;
  const key = storageKey(device, dtype, n);
  return current.get(key)?.pop() ?? previous.get(key)?.pop() ?? null;
}

/** Marks a large buffer made by allocBuf as one that may be given back. */
export function markPoolable(buf: Storage): void {
  if (!inHostMemory(buf.device)) deviceOwned.add(buf);
  else if (buf.size >= POOL_MIN_ELEMENTS) poolable.add(buf);
}

/**
 * Gives back a buffer nothing will read or write again: to the active recycler if it lent it, else
 * to the pool if allocBuf made it outside a recycler (and it is large); otherwise ignored, so a
 * caller cannot hand over memory it does not own.
 */
export function giveBack(buf: Storage): void {
  if (activeRecycler()?.giveBack(buf)) return;
  if (deviceOwned.delete(buf)) return buf.dispose();
  if (!enabled || !poolable.has(buf)) return;
  const key = storageKey(buf.device, buf.dtype, buf.size);
  if (current.get(key)?.includes(buf) || previous.get(key)?.includes(buf)) return;
  const list = current.get(key);
  if (list) list.push(buf);
  else current.set(key, [buf]);
}

/** A backward pass starts: what the pass before last gave back and nobody took is released. */
export function startPass(): void {
  previous = current;
  current = new Map();
}

/** Bytes the pool holds (tests and diagnostics). */
export function pooledBytes(): number {
  let total = 0;
  for (const m of [current, previous]) for (const list of m.values()) for (const b of list) total += b.byteLength;
  return total;
}
