/**
 * A model's bf16 weight casts held for the model's lifetime, as a model loaded for bf16 inference
 * is (transformers' `torch_dtype=torch.bfloat16`): cast once, on first use, and reused by every
 * later generation, request and batch, instead of once per generation (which put the cast of every
 * weight, 140–165 ms for the SmolLM2-135M shape on one thread, loaded machine, into each prompt's
 * prefill; and, the casts being new tensors each time, the packed layout of packed_weights.ts never
 * served a prompt's prefill: a held cast packs at its first prompt, which is then the only one to pay it).
 *
 * The model's float32 weights stay: `--precision` may be fp32 per call and the weights remain the
 * model's masters (a LoRA merge, a reload). Converting them to bf16 storage in place would save the
 * 4-byte copy (for `serve`, a third of its weight memory) but every fp32 op would then need bf16
 * weight operands; the held casts cost 2 bytes a weight beside the 4, as DecodeBatch's did already.
 *
 * A cast is made again when its weight changes through its storage: a new storage (a reload that
 * swaps one in) or a write (Storage.version: `serve --follow` loading a checkpoint, loadStateDict;
 * on the cpu, whose storages count writes; a WebGPU storage counts none, and `serve --follow` swaps
 * in a new model, whose casts are its own). Each held cast also gets a packed copy at its first
 * prompt (2 bytes a weight more, as a server's batched decode made already).
 * A kernel writing a weight in place (an optimizer step) does not count, so a model that trains
 * must not hold its casts: generate() then casts per generation (weightCasts), as the training
 * samples do, and holding is the caller's declaration that nothing trains the model.
 */
import type { Module } from '../nn/module.js';
import { HugePageBlocks } from '../tensor/huge_page_block.js';
import { CastCache } from '../tensor/ops/cast_cache.js';
import { toBf16Into } from '../tensor/ops/cast.js';
import { markLongLived } from '../tensor/ops/packed_weights.js';
import { outsideRecycler } from '../tensor/recycler.js';
import type { Storage } from '../tensor/storage.js';
import type { Tensor } from '../tensor/tensor.js';

/** Where a cast's weight was when cast: its storage and that storage's write count. */
interface CastFrom {
  readonly storage: Storage;
  readonly version: number | undefined;
}

/** bf16 elements of a block of held casts at most (64 MB). */
const CAST_BLOCK = 32 << 20;

/** A CastCache that recasts all of its weights when one of them changed through its storage. */
export class HeldCasts extends CastCache {
  private readonly from = new Map<Tensor, CastFrom>();
  private made = 0;
  /** Where the casts are laid out: huge-page blocks (weight_pages.ts has why), null where the backend has none; undefined before the first cast. */
  private blocks: HugePageBlocks | null | undefined;
  /** Elements of the float32 weights, and of those not cast yet: a new block's size, so the last block ends near the last cast. */
  private readonly total: number;
  private uncast: number;

  constructor(weights: readonly Tensor[]) {
    super(weights);
    this.total = weights.reduce((n, w) => n + (w.dtype === 'float32' ? w.size : 0), 0);
    this.uncast = this.total;
  }

  /** How many casts this cache has made over its life (a second generation should make none). */
  get castsMade(): number {
    return this.made;
  }

  override castOf(x: Tensor): Tensor | null {
    const from = this.from.get(x);
    // One weight changed: a reload writes them all, so every cast is dropped, not only this one.
    if (from !== undefined && (from.storage !== x.storage || from.version !== x.storage.version)) this.clear();
    const held = this.size;
    // Made outside a step's recycler: the cast outlives the step (inference_forward.ts stepRecycler).
    const cast = outsideRecycler(() => super.castOf(x));
    if (cast !== null && this.size > held) {
      // Packed at its first product of several rows (a prompt): the reorder is paid once, not by the second prompt.
      markLongLived(cast);
      this.from.set(x, { storage: x.storage, version: x.storage.version });
      this.made++;
    }
    return cast;
  }

  /** A cast in the current huge-page block (64 MB of bf16 at most, or what is left to cast). */
  protected override makeCast(x: Tensor): Tensor {
    if (this.blocks === undefined) this.blocks = HugePageBlocks.on(x.device, 'bfloat16');
    if (this.blocks === null) return super.makeCast(x);
    const cast = toBf16Into(x, this.blocks.take(x.size, Math.min(CAST_BLOCK, Math.max(this.uncast, x.size))));
    this.uncast = Math.max(0, this.uncast - x.size);
    return cast;
  }

  override clear(): void {
    super.clear();
    this.uncast = this.total;
    this.from.clear();
  }
}

const held = new WeakMap<Module, HeldCasts>();

/**
 * Declares that nothing trains `model` (its weights change only by reload: a new storage or a
 * write) and holds its bf16 casts for as long as the model lives; every bf16 generation over it
 * (generate, DecodeBatch, serve) reuses them. Returns the model's cache (the same one on every call).
 */
export function holdBf16Casts(model: Module): HeldCasts {
  let casts = held.get(model);
  if (casts === undefined) {
    casts = new HeldCasts(model.parameters());
    held.set(model, casts);
  }
  return casts;
}

/** The casts holdBf16Casts holds for `model`, or undefined where it holds none. */
export function heldBf16Casts(model: Module): HeldCasts | undefined {
  return held.get(model);
}

/** Drops `model`'s held casts (before training it again): later generations cast per generation. */
export function releaseBf16Casts(model: Module): void {
  held.delete(model);
}
