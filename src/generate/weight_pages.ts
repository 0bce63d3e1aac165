/**
 * A model loaded for inference keeps its float32 weights in one block of memory backed by huge
 * pages (2 MB), where its backend can advise them (tensor/huge_page_block.ts). A decode step reads
 * every weight once, hundreds of MB, and in 4 KB pages the page walks cost the stream: one
 * process-wide switch (glibc's malloc advising huge pages, GLIBC_TUNABLES=glibc.malloc.hugetlb=1)
 * made a SmolLM2-135M decode step 8-12 % faster on one thread, batch 1 and 8. Each parameter is
 * copied into its place in the block and rebound to it (Tensor.bind), so the small ones (a
 * 576 × 576 projection, 1.3 MB) sit in huge pages too: on their own they hold no aligned 2 MB span.
 *
 * For a model nothing trains (a generator): each weight gets a new storage, so held bf16 casts and
 * packed copies are made again at their next use; while the copy is made the old storages are still
 * alive (twice the weights' memory, once).
 */
import type { Module } from '../nn/module.js';
import { HugePageBlocks } from '../tensor/huge_page_block.js';
import { kernelsFor } from '../tensor/dispatch.js';

/** Moves `model`'s float32 weights into one huge-page block; returns whether it could (its backend advises huge pages). */
export function holdWeightsInHugePages(model: Module): boolean {
  const weights = model.parameters().filter((p) => p.dtype === 'float32');
  const device = weights[0]?.device;
  const blocks = device === undefined || weights.some((p) => p.device !== device) ? null : HugePageBlocks.on(device, 'float32');
  if (blocks === null) return false;
  const total = weights.reduce((n, p) => n + p.size, 0);
  for (const p of weights) {
    const place = blocks.take(p.size, total);
    kernelsFor(p).stridedCopy(p.buffer, 0, [1], place.buffer, 0, [1], [p.size], false);
    p.bind(place, p.grad);
  }
  return true;
}
