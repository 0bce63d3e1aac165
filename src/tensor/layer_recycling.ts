/**
 * Buffer reuse across the layers of one forward: a generation's prefill, where every decoder layer
 * allocates the same activations (at 8 prompts of 32 tokens on the SmolLM2-135M shape ~10 MB a
 * layer, 300 MB a forward). Fresh, each is a page-faulting calloc and garbage-collector work: a
 * fifth of a bf16 prefill's time (one thread, profiled). Under `withLayerRecycling`, each layer the
 * model runs through `inLayerScope` is one run of a BufferRecycler, served from the buffers of the
 * layer before; only its output outlives it (the recycler disowns it), for the next layer to read,
 * and once that layer has run, its buffer serves the layers after (a prefill of 64 tokens on the
 * SmolLM2-135M shape left 30 outputs of 147 KB to the garbage collector, 4.4 MB resident at its peak).
 *
 * The caller's promise (generate/inference_forward.ts gives it as for a decode step's recycler): no
 * grad; nothing a layer makes outlives it but its output and what it makes outside a recycler
 * (a KV cache's storage, a model's held bf16 casts); and the layers are a chain, each one's input
 * the output of the one before, read by nothing once the next has run (models/llama.ts, gpt2.ts).
 */
import { BufferRecycler, outsideRecycler } from './recycler.js';
import { kernelsFor } from './dispatch.js';
import type { Storage } from './storage.js';
import { Tensor, allocUninit } from './tensor.js';

/** A forward's recycler, and the last layer's output where it is a buffer the recycler lent and disowned. */
interface LayerChain {
  readonly recycler: BufferRecycler;
  lastOutput: Storage | null;
}

let active: LayerChain | null = null;

/** Runs fn (a forward) with the layers it runs through inLayerScope recycling each other's buffers. */
export function withLayerRecycling<T>(fn: () => T): T {
  const outer = active;
  active = { recycler: new BufferRecycler(), lastOutput: null };
  try {
    return fn();
  } finally {
    active = outer;
  }
}

/**
 * One layer of a forward: under withLayerRecycling, a run of its recycler whose output alone
 * outlives it; else the layer as it is. A layer that waits (a tensor-parallel group's sum) cannot
 * be one run, and is refused there.
 */
export function inLayerScope<T extends Tensor | Promise<Tensor>>(layer: () => T): T {
  const chain = active;
  if (!chain) return layer();
  const out = chain.recycler.run(layer);
  if (!(out instanceof Tensor)) throw new Error('layer recycling: a layer waits on its group (tensor parallel); run the forward without withLayerRecycling');
  const kept = keptOutput(chain.recycler, out);
  // The layer before's output was this layer's input, and nothing reads it now.
  if (chain.lastOutput && chain.lastOutput !== kept.storage) chain.recycler.adopt(chain.lastOutput);
  chain.lastOutput = kept === out ? kept.storage : null;
  return kept as T;
}

/** A layer's output, out of its recycler's reach: disowned, or copied where it is a view of a lent buffer (activation checkpointing's layers too). */
export function keptOutput(recycler: BufferRecycler, out: Tensor): Tensor {
  if (recycler.disown(out.storage)) return out;
  const copy = outsideRecycler(() => allocUninit(out.dtype, out.size, out.device));
  kernelsFor(out).stridedCopy(out.buffer, 0, [1], copy.buffer, 0, [1], [out.size], false);
  return new Tensor(copy, out.shape);
}
