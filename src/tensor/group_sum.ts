/**
 * Sums over a group of ranks as autograd ops (Megatron's conjugate pair f and g; MLX's `all_sum`
 * and `sum_gradients`): what lets a tensor-parallel layer be an ordinary module. The sum itself is
 * a `GroupReducer`, an interface defined here and implemented above (parallel/ over comm's process
 * group), so tensor/ knows nothing of comm. A group of one sums nothing: both ops are then the
 * identity and stay synchronous, so a model run on one rank needs no `if distributed`.
 */
import { record } from './autograd.js';
import { kernelsFor } from './dispatch.js';
import type { Storage } from './storage.js';
import { Tensor } from './tensor.js';

/** The ranks a sharded layer spans: sums a storage in place over them, every rank in the same order. */
export interface GroupReducer {
  readonly size: number;
  sumInPlace(values: Storage): Promise<void>;
}

/** A value now, or once a sum over a group is done. */
export type MaybeAsync<T> = T | Promise<T>;

/**
 * Forward: the element-wise sum of `partial` over the group (g; a row-parallel layer's partial
 * products). Backward: the gradient passes through unchanged, since every rank holds the same graph
 * above. The sum is made in `partial`'s own storage, which the result shares: pass a tensor nothing
 * else reads (a linear layer's output, whose backward does not read it).
 */
export function sumOverGroup(partial: Tensor, group: GroupReducer): MaybeAsync<Tensor> {
  if (group.size === 1) return partial;
  return group.sumInPlace(partial.storage).then(() => {
    const out = new Tensor(partial.storage, partial.shape);
    return record(out, 'group_sum', [partial], (gy) => kernelsFor(partial).axpy(1, gy, partial.ensureGrad()));
  });
}

/** Per group, the f already made of an input (until its backward releases it). */
const gradientSums = new WeakMap<GroupReducer, WeakMap<Tensor, Tensor>>();

/**
 * Forward: `x` itself (f; the input of a column-parallel layer, replicated on every rank).
 * Backward: the gradient summed over the group, awaited, since each rank's shard contributes its
 * part of the input's gradient. An input several column-parallel layers read (BERT's query, key and
 * value) gets one f, so its gradient is summed once, not once per layer.
 */
export function sumGradientsOverGroup(x: Tensor, group: GroupReducer): Tensor {
  if (group.size === 1) return x;
  let made = gradientSums.get(group);
  if (!made) gradientSums.set(group, (made = new WeakMap()));
  const earlier = made.get(x);
  if (earlier?.gradFn) return earlier;
  const out = new Tensor(x.storage, x.shape);
  if (x.requiresGrad) made.set(x, out);
  return record(out, 'group_sum_gradients', [x], async () => {
    // `out.grad` is the gy autograd hands over: summed in place, then passed down.
    const gy = out.grad!;
    await group.sumInPlace(gy);
    kernelsFor(x).axpy(1, gy.buffer, x.ensureGrad());
  });
}
