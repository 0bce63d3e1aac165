/**
 * A forward written once that runs synchronously on one rank and awaits where a sharded layer sums
 * over its group (tensor/group_sum.ts). `then` applies the rest of a forward at once to a value, or
 * after a pending sum: a model without sums never sees a promise, so its forward stays synchronous
 * and as fast. Modules whose forward may wait give `run`; their `forward` is `settled(run(x))`.
 */
import type { MaybeAsync } from '../../tensor/group_sum.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Module } from '../module.js';

export type { MaybeAsync } from '../../tensor/group_sum.js';

/** A module whose forward may wait on a sum over its group. */
export interface MaybeAsyncModule {
  run(x: Tensor): MaybeAsync<Tensor>;
}

export function then<T, U>(value: MaybeAsync<T>, rest: (v: T) => MaybeAsync<U>): MaybeAsync<U> {
  return value instanceof Promise ? value.then(rest) : rest(value);
}

/** `step` over `items` in order, threading the tensor through; synchronous until a step waits. */
export function eachInTurn<T>(items: readonly T[], x: Tensor, step: (item: T, x: Tensor) => MaybeAsync<Tensor>, from = 0): MaybeAsync<Tensor> {
  let y = x;
  for (let i = from; i < items.length; i++) {
    const out = step(items[i], y);
    if (out instanceof Promise) return out.then((t) => eachInTurn(items, t, step, i + 1));
    y = out;
  }
  return y;
}

/** The module's output: through `run` where it has one (it may wait), else its forward. */
export function runModule(m: Module, x: Tensor): MaybeAsync<Tensor> {
  const stepped = m as Partial<MaybeAsyncModule>;
  return typeof stepped.run === 'function' ? stepped.run(x) : m.forward(x);
}

/** A forward's value now: refuses one that waits on a group sum (call `run` and await it instead). */
export function settled(value: MaybeAsync<Tensor>, who: string): Tensor {
  if (!(value instanceof Promise)) return value;
  value.catch(() => undefined);
  throw new Error(`${who} sums over a tensor-parallel group: await its run() (or forwardAsync) instead of forward()`);
}
