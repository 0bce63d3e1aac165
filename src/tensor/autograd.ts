import { fmtShape } from './shape.js';
import { Tensor, allocStorage } from './tensor.js';
import { kernelsFor } from './dispatch.js';
import type { DeviceBuffer, Storage } from './storage.js';
import { giveBack, startPass } from './buffer_pool.js';

/**
 * Reverse-mode automatic differentiation. Ops call `record` to attach a GradFn to their output;
 * `backward` walks the graph in reverse topological order and lets each GradFn accumulate into
 * its inputs' gradients. Leaf gradients (parameters) accumulate across calls until zeroed;
 * intermediate gradients are released as soon as they have been propagated.
 */

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without building a graph (evaluation, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** True when an op over these inputs must record a gradient. */
export function needsGrad(...inputs: Tensor[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t.requiresGrad) return true;
  return false;
}

/**
 * Attaches a GradFn to `out` when any input needs a gradient. Returns `out`. An op whose backward
 * never reads `out`'s values says so with `readsOutput` false (handover.ts may then release them).
 */
export function record(
  out: Tensor, op: string, inputs: Tensor[], backward: (gy: DeviceBuffer) => void | Promise<void>, readsOutput: boolean | 'sign' = true,
): Tensor {
  if (needsGrad(...inputs)) {
    out.requiresGrad = true;
    out.gradFn = { op, inputs, backward, readsOutput };
  }
  return out;
}

/** Topological order of the graph below `root` (inputs before outputs), iteratively. */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const inputs = top[0].gradFn?.inputs ?? [];
    if (top[1] < inputs.length) {
      const next = inputs[top[1]++];
      if (next.requiresGrad && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      order.push(top[0]);
      stack.pop();
    }
  }
  return order;
}

/** Intermediates whose graph edge a backward pass released, with the op that made them. */
const released = new WeakMap<Tensor, string>();

/** Hooks into a backward pass (the gradient buckets of overlap.ts use them). */
export interface BackwardHooks {
  /**
   * Called once per leaf that requires a gradient (a parameter), as soon as its gradient is final:
   * right after the last op that feeds it has propagated. Return true to have `backwardAsync`
   * yield to the event loop before the next op (e.g. a bucket just went on the wire).
   */
  onLeafReady?(leaf: Tensor): boolean | void;
  /** backwardAsync: also yield after every op while this returns true (communication in flight). */
  keepYielding?(): boolean;
}

/**
 * Back-propagates from `root`. Without `gradient`, root must hold one element (a loss) and is
 * seeded with 1. A gradient is a storage on root's device, or host values (copied there).
 */
export type Gradient = Storage | ArrayLike<number>;

export function backward(root: Tensor, gradient?: Gradient, hooks: BackwardHooks = {}): void {
  for (const step of backwardSteps(root, gradient, hooks)) {
    if (step) step.done.catch(() => undefined);
    if (step) throw new Error(`backward: the op '${step.op}' awaits (a sum over a group): call backwardAsync`);
  }
}

/**
 * backward(), awaiting the ops whose backward awaits (a sum over a group, group_sum.ts) and giving
 * the event loop a turn whenever a hook asks for it, so messages posted from `onLeafReady` make
 * progress while the rest of the graph is differentiated. Same results, bit for bit.
 */
export async function backwardAsync(root: Tensor, gradient?: Gradient, hooks: BackwardHooks = {}): Promise<void> {
  for (const step of backwardSteps(root, gradient, hooks)) await (step ? step.done : new Promise<void>((resolve) => setImmediate(resolve)));
}

/** A GradFn's backward still running (it awaits): the pass goes on once `done` settles. */
interface Pending {
  op: string;
  done: Promise<void>;
}

/**
 * The backward pass, yielding where the hooks want the event loop to run (undefined) and where an
 * op's backward awaits (its Pending). A graph without such ops runs through without a yield.
 */
function* backwardSteps(root: Tensor, gradient: Gradient | undefined, hooks: BackwardHooks): Generator<Pending | undefined> {
  if (!root.requiresGrad) throw new Error('backward: tensor does not require grad (no parameter reached it)');
  if (!gradient && root.size !== 1) {
    throw new Error(`backward: a gradient is required for a non-scalar tensor of shape ${fmtShape(root.shape)}`);
  }
  const given = gradient === undefined ? 0 : isStorage(gradient) ? gradient.size : gradient.length;
  if (gradient && given !== root.size) {
    throw new Error(`backward: gradient has ${given} elements, tensor of shape ${fmtShape(root.shape)} has ${root.size}`);
  }
  const order = topoOrder(root);
  // A graph edge released by an earlier backward would silently swallow the gradient (as if the
  // intermediate were a leaf): refuse before anything is accumulated.
  for (const t of order) {
    const op = released.get(t);
    if (op !== undefined) {
      throw new Error(
        `backward: the graph through '${op}' (shape ${fmtShape(t.shape)}) was already released by an earlier backward; ` +
          'add the losses and call backward once',
      );
    }
  }
  const readyAfter = hooks.onLeafReady ? leavesReadyAfter(order) : null;
  startPass();
  const g = root.ensureGrad();
  kernelsFor(root).axpy(1, seedOf(root, gradient), g);
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i];
    if (t.gradFn && t.grad) {
      const done = t.gradFn.backward(t.grad.buffer);
      if (done) yield { op: t.gradFn.op, done };
      // Intermediate results are not kept: free the gradient (to the pool: nothing else holds an
      // intermediate's gradient, and every GradFn reads gy only while it runs) and the graph edge.
      released.set(t, t.gradFn.op);
      giveBack(t.grad);
      t.grad = null;
      t.gradFn = null;
    }
    let yieldNow = false;
    for (const leaf of readyAfter?.get(i) ?? []) if (hooks.onLeafReady!(leaf) === true) yieldNow = true;
    if (yieldNow || hooks.keepYielding?.()) yield undefined;
  }
}

function isStorage(g: Gradient): g is Storage {
  return (g as Storage).buffer !== undefined && typeof (g as Storage).readSync === 'function';
}

/** The gradient that starts the pass, on root's device: 1 for a loss, else the caller's. */
function seedOf(root: Tensor, gradient: Gradient | undefined): DeviceBuffer {
  if (gradient === undefined) {
    const one = allocStorage(root.dtype, 1, root.device);
    kernelsFor(root).fill(one.buffer, 1);
    return one.buffer;
  }
  if (isStorage(gradient)) {
    if (gradient.device !== root.device || gradient.dtype !== root.dtype) {
      throw new Error(`backward: gradient is ${gradient.dtype} on ${gradient.device}, tensor is ${root.dtype} on ${root.device}`);
    }
    return gradient.buffer;
  }
  const s = allocStorage(root.dtype, root.size, root.device);
  s.write(gradient);
  return s.buffer;
}

/** For each op index, the leaves whose last consumer (in backward order) it is. */
function leavesReadyAfter(order: Tensor[]): Map<number, Tensor[]> {
  const last = new Map<Tensor, number>();
  // Backward runs from the highest index down, so a leaf's last consumer has the lowest index.
  for (let i = order.length - 1; i >= 0; i--) {
    for (const input of order[i].gradFn?.inputs ?? []) if (input.requiresGrad && !input.gradFn) last.set(input, i);
  }
  const out = new Map<number, Tensor[]>();
  for (const [leaf, i] of last) {
    const list = out.get(i);
    if (list) list.push(leaf);
    else out.set(i, [leaf]);
  }
  return out;
}
