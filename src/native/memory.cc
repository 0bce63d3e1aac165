// How the process allocates the engine's large buffers (see src/tensor/buffer_pool.ts).
//
// glibc serves an allocation of 32 MB or more with a fresh mmap and returns it with munmap on free,
// so every large tensor the engine makes (a language model's 100-200 MB logits, one per step) is
// zero pages that fault on first touch: ~4x the cost of writing into memory the process already has
// (bench:models' bert-mini: ~20% of a step's CPU time). Raising the mmap and trim thresholds keeps
// such buffers in the heap, where the next step's allocation of the same size reuses them once V8
// has collected the old one (calloc then clears them with a memset). PyTorch keeps its own caching
// allocator for the same reason. The memory stays with the process up to its peak, as there.
#include "napi_args.h"
#include "registry.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace sc {
namespace {

// Large enough for any single tensor a model on one machine makes; also how much free heap top is kept.
constexpr int kKeepBytes = 1 << 30;

/** keepLargeAllocations() → whether the allocator (glibc) took the new thresholds. */
napi_value KeepLargeAllocations(Args& a) {
  bool ok = false;
#if defined(__GLIBC__)
  ok = mallopt(M_MMAP_THRESHOLD, kKeepBytes) == 1 && mallopt(M_TRIM_THRESHOLD, kKeepBytes) == 1;
#endif
  return boolValue(a.env(), ok);
}

}  // namespace

void registerMemory(napi_env env, napi_value exports) {
  defineFunction(env, exports, "keepLargeAllocations", entry<KeepLargeAllocations>);
}

}  // namespace sc
