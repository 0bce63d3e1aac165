/**
 * Runs one stage's part of a pipeline schedule (schedule.ts) over point-to-point messages of a
 * ProcessGroup whose rank s is stage s: a forward receives its input activation from stage s-1 (stage
 * 0 makes it from the batch) and sends its output to s+1; a backward receives the output's gradient
 * from s+1 (the last stage seeds its loss with the micro-batch's weight instead) and sends the input's
 * gradient to s-1. Parameter gradients accumulate in the stage's arena as Σ_k w_k ∇loss_k; the caller
 * divides by Σ w_k (after summing over data-parallel replicas), as micro_batches.ts does for one process.
 * Every receive has the group's deadline, which names the late rank.
 *
 * A stage may live on a GPU (StageWork.device): what it sends (its output, its input's gradient, its
 * loss) is read back first, awaited; an activation it receives is uploaded there, and a gradient it
 * receives seeds the backward as host values (autograd copies them to the root's device). Stages on
 * different devices (a GPU stage beside a cpu one) exchange the same float32 messages.
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import { backwardAsync } from '../../tensor/autograd.js';
import { CPU, type Device } from '../../tensor/storage.js';
import { Tensor } from '../../tensor/tensor.js';
import type { PipelineAction } from './schedule.js';

/** Activations go down the pipeline under this tag, their gradients up under the next. */
const ACTIVATION_TAG = 0x5049;
const GRADIENT_TAG = 0x504a;
/** A shape header: rank of the tensor, then its dimensions. */
const MAX_DIMS = 8;

export interface StageWork {
  /** Where the stage's layers run: received activations are put there (default the cpu). */
  device?: Device;
  /**
   * The stage's layers on micro-batch `micro`'s input (async where they sum over a tensor-parallel
   * group; the backward, autograd's backwardAsync, then awaits their gradient sums).
   */
  forward(x: Tensor, micro: number): Tensor | Promise<Tensor>;
  /** Stage 0: micro-batch k's input. */
  input?(micro: number): Tensor;
  /** Last stage: micro-batch k's mean loss and what it is a mean over. */
  loss?(output: Tensor, micro: number): { loss: Tensor; weight: number };
}

export interface StageResult {
  /** Σ_k w_k · loss_k over the micro-batches (last stage; 0 elsewhere). */
  lossSum: number;
  /** Σ_k w_k (last stage; 0 elsewhere). */
  weight: number;
  /** The most micro-batches whose activations were alive at once. */
  peakLive: number;
  /** Time spent waiting for a neighbour (ms): the stage's share of the bubble. */
  waitMs: number;
  totalMs: number;
}

interface Live {
  input: Tensor | null;
  output: Tensor;
  loss?: Tensor;
  weight?: number;
}

export async function runStage(group: ProcessGroup, work: StageWork, actions: readonly PipelineAction[]): Promise<StageResult> {
  const stage = group.rank;
  const last = group.size - 1;
  const live = new Map<number, Live>();
  const result: StageResult = { lossSum: 0, weight: 0, peakLive: 0, waitMs: 0, totalMs: 0 };
  const start = performance.now();
  const waited = async <T>(p: Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await p;
    } finally {
      result.waitMs += performance.now() - t0;
    }
  };
  const sends: Promise<void>[] = [];
  const device = work.device ?? CPU;
  for (const { kind, micro } of actions) {
    if (kind === 'forward') {
      const input = stage === 0 ? null : await waited(recvTensor(group, stage - 1, ACTIVATION_TAG, device));
      if (input) input.requiresGrad = true;
      const x = input ?? work.input!(micro);
      const output = await work.forward(x, micro);
      const entry: Live = { input, output };
      if (stage === last) {
        const { loss, weight } = work.loss!(output, micro);
        Object.assign(entry, { loss, weight });
        if (weight > 0) result.lossSum += (await hostValues(loss))[0] * weight;
        result.weight += weight;
      } else {
        sends.push(...(await sendTensor(group, output, stage + 1, ACTIVATION_TAG)));
      }
      live.set(micro, entry);
      result.peakLive = Math.max(result.peakLive, live.size);
    } else {
      const entry = live.get(micro);
      if (!entry) throw new Error(`pipeline stage ${stage}: backward of micro-batch ${micro} before its forward`);
      live.delete(micro);
      const differentiate = (root: Tensor, seed: Float32Array): Promise<void> => backwardAsync(root, seed);
      if (stage === last) {
        if (entry.weight! > 0) await differentiate(entry.loss!, Float32Array.of(entry.weight!));
      } else {
        // The output's gradient seeds backward as host values: no tensor is made of it.
        const gy = await waited(recvValues(group, stage + 1, GRADIENT_TAG));
        // A first stage with nothing to train (LoRA's frozen embeddings) has no graph to run it into.
        if (entry.output.requiresGrad) await differentiate(entry.output, gy.data);
      }
      if (entry.input) {
        const { grad, shape, size } = entry.input;
        const gx = grad ? await hostValues(new Tensor(grad, shape)) : new Float32Array(size);
        sends.push(...sendValues(group, gx, shape, stage - 1, GRADIENT_TAG));
      }
    }
  }
  await waited(Promise.all(sends));
  result.totalMs = performance.now() - start;
  return result;
}

/**
 * Sends a tensor point to point: a shape header, then its float32 values (two messages under
 * `tag`). Resolves once the values are on the host (a GPU tensor's read is awaited), with the
 * sends under way: the caller awaits those when it must.
 */
export async function sendTensor(group: ProcessGroup, t: Tensor, dst: number, tag: number): Promise<Promise<void>[]> {
  return sendValues(group, await hostValues(t), t.shape, dst, tag);
}

/** sendTensor of host values (a copy the caller gives away). */
function sendValues(group: ProcessGroup, data: Float32Array, shape: readonly number[], dst: number, tag: number): Promise<void>[] {
  if (shape.length > MAX_DIMS) throw new RangeError(`pipeline: activations of more than ${MAX_DIMS} dimensions`);
  const header = Int32Array.from([shape.length, ...shape, ...new Array(MAX_DIMS - shape.length).fill(0)]);
  return [group.send(header, dst, { tag }), group.send(data, dst, { tag })];
}

/** A copy of a tensor's values on the host (owned, so it may be given away to the wire). */
function hostValues(t: Tensor): Promise<Float32Array> {
  return t.read() as Promise<Float32Array>;
}

/** Receives what sendTensor sent, within the group's deadline (which names the late rank), as a tensor on `device`. */
export async function recvTensor(group: ProcessGroup, src: number, tag: number, device: Device = CPU): Promise<Tensor> {
  const { data, shape } = await recvValues(group, src, tag);
  // A fresh array: the cpu adopts it, another device uploads it.
  return Tensor.fromHost(data, shape, false, device);
}

/** Receives what sendTensor sent as host values and their shape. */
async function recvValues(group: ProcessGroup, src: number, tag: number): Promise<{ data: Float32Array; shape: number[] }> {
  const header = await group.recv(new Int32Array(MAX_DIMS + 1), src, { tag });
  const shape = Array.from(header.subarray(1, 1 + header[0]));
  const data = await group.recv(new Float32Array(shape.reduce((n, d) => n * d, 1)), src, { tag });
  return { data, shape };
}
