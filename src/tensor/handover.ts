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
 * A maker that reads only the sign of its output (`readsOutput` 'sign': BatchNorm+ReLU's mask)
 * lets it go too when the op keeps a bf16 copy (conv2d): the copy stands in for the values in the
 * maker's backward (`standInFor`), since rounding to bf16 keeps which values are > 0 (but for
 * float32 denormals, which round to zero: docs/PRECISION.md).
 *
 * Everything else stays as it was: a tensor not handed over, or one whose maker reads it, keeps
 * its float32 values; float32 steps never look at the mark.
 */

const handedOver = new WeakSet<Tensor>();
/** Tensors whose values releaseValues gave back. */
const released = new WeakSet<Tensor>();
/** The bf16 copy an op kept of a released tensor whose maker reads its sign, until the maker takes it. */
const standIns = new WeakMap<Tensor, Storage>();

/**
 * Marks `t` as read by no op of the forward after the next one that takes it (the caller's
 * promise): `proj.forward(lastUse(gelu(fc.forward(x))))`. Returns t.
 */
export function lastUse(t: Tensor): Tensor {
  handedOver.add(t);
  return t;
}

/**
 * Whether an op that keeps its own copy of x for the backward may release x's float32 values;
 * `bf16Copy`: the op keeps a bf16 copy it can hand to x's maker (releaseValues), so a maker that
 * reads only its output's sign may be released from too.
 */
export function mayRelease(x: Tensor, bf16Copy = false): boolean {
  if (!handedOver.has(x) || !isGradEnabled() || x.gradFn === null) return false;
  const reads = x.gradFn.readsOutput;
  return reads === false || (reads === 'sign' && bf16Copy);
}

/**
 * Whether an op may write its result over x's values: x is handed over, and either no backward
 * will read them (outside autograd: an evaluation's logits) or the op may release them (mayRelease).
 */
export function mayOverwrite(x: Tensor): boolean {
  return handedOver.has(x) && (!isGradEnabled() || mayRelease(x));
}

/**
 * Gives x's storage back (to the step's recycler or the pool) and leaves x a placeholder that
 * keeps its size, dtype and device (its gradient is still accumulated) but refuses its values,
 * naming `op`, so a broken `lastUse` promise fails loudly rather than reading a reused buffer.
 * `bf16Copy`, the op's saved copy of x: where x's maker reads its sign, the copy stands in for
 * the values in the maker's backward, which gives it back (`standInFor`); the op must not then.
 */
export function releaseValues(x: Tensor, op: string, bf16Copy?: Storage): void {
  if (bf16Copy && x.gradFn?.readsOutput === 'sign') standIns.set(x, bf16Copy);
  giveBack(takeValues(x, op));
}

/** Whether `copy` stands in for t's released values (its maker's backward, not the op, gives it back). */
export function isStandIn(t: Tensor, copy: Storage): boolean {
  return standIns.get(t) === copy;
}

/**
 * For the backward of t's maker when t's values were released: the bf16 copy of them the op that
 * read t last kept, now the caller's to give back once read. Fails naming the op if none was kept.
 */
export function standInFor(t: Tensor, op: string): Storage {
  const copy = standIns.get(t);
  if (!copy) throw new Error(`'${op}' reads its output in its backward, but its values were released and no bf16 copy stands in for them`);
  standIns.delete(t);
  return copy;
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
