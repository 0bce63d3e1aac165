import { giveBack } from './buffer_pool.js';
import { isGradEnabled } from './autograd.js';
import type { DeviceBuffer, Storage } from './storage.js';
import type { Tensor } from './tensor.js';

/**
 * Handing an activation over to the op that reads it last. Under bf16 a matrix op saves its own
 * bf16 copy of its input for the backward; the float32 input is then needed by nobody else only
 * if (1) no later op of the forward reads it, which only the code calling the op knows and says
 * with `lastUse`, and (2) the op that made it does not read its own output in its backward
 * (`GradFn.readsOutput` false: LayerNorm, GELU). Then its storage goes back to the step's
 * recycler at once, and the next activation of that size reuses it: a step holds the bf16 copy
 * (2 bytes an element) instead of the float32 activation (4), as autocast's saved tensors are bf16.
 *
 * Everything else stays as it was: a tensor not handed over, or one whose maker reads it, keeps
 * its float32 values; float32 steps never look at the mark.
 */

const handedOver = new WeakSet<Tensor>();
/** Tensors whose values releaseValues gave back. */
const released = new WeakSet<Tensor>();

/**
 * Marks `t` as read by no op of the forward after the next one that takes it (the caller's
 * promise): `proj.forward(lastUse(gelu(fc.forward(x))))`. Returns t.
 */
export function lastUse(t: Tensor): Tensor {
  handedOver.add(t);
  return t;
}

/** Whether an op that keeps its own copy of x for the backward may release x's float32 values. */
export function mayRelease(x: Tensor): boolean {
  return handedOver.has(x) && isGradEnabled() && x.gradFn !== null && x.gradFn.readsOutput === false;
}

/**
 * Gives x's storage back (to the step's recycler or the pool) and leaves x a placeholder that
 * keeps its size, dtype and device (its gradient is still accumulated) but refuses its values,
 * naming `op`, so a broken `lastUse` promise fails loudly rather than reading a reused buffer.
 */
export function releaseValues(x: Tensor, op: string): void {
  const storage = x.storage;
  x.storage = releasedStorage(storage, op);
  released.add(x);
  giveBack(storage);
}

/**
 * Takes x's storage for the op that reads x last, to write its output over x's values (in place),
 * and leaves x the same placeholder as releaseValues. Returns the storage, now the op's.
 */
export function takeValues(x: Tensor, op: string): Storage {
  const storage = x.storage;
  x.storage = releasedStorage(storage, op);
  released.add(x);
  return storage;
}

/** Whether t's values were released (a kernel argument it does not read must then come from elsewhere). */
export function valuesReleased(t: Tensor): boolean {
  return released.has(t);
}

function releasedStorage(was: Storage, op: string): Storage {
  const refuse = (): never => {
    throw new Error(`tensor values were released after '${op}' took them as their last use (lastUse); nothing may read them after that op`);
  };
  return {
    device: was.device,
    dtype: was.dtype,
    size: was.size,
    byteLength: 0,
    get buffer(): DeviceBuffer {
      return refuse();
    },
    read: refuse,
    readSync: refuse,
    write: refuse,
    zero: refuse,
    view: refuse,
    dispose: () => {},
  };
}
