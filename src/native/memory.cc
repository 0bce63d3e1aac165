// How the process allocates the engine's large buffers (see src/tensor/buffer_pool.ts).
//
// glibc serves an allocation of 32 MB or more with a fresh mmap and returns it with munmap on free,
// so every large tensor the engine makes (a language model's 100-200 MB logits, one per step) is
// zero pages that fault on first touch: ~4x the cost of writing into memory the process already has
// (bench:models' bert-mini: ~20% of a step's CPU time). Raising the mmap and trim thresholds keeps
// such buffers in the heap, where the next step's allocation of the same size reuses them once V8
// has collected the old one (calloc then clears them with a memset). PyTorch keeps its own caching
// allocator for the same reason. The memory stays with the process up to its peak, as there.
//
// adviseHugePages backs a long-lived block (a model's weights held for inference) with 2 MB pages:
// a decode step reads every weight once, hundreds of MB in 4 KB pages, and the page walks cost the
// stream (SmolLM2-135M decode, one thread: 8-12 % a step with glibc's malloc advising huge pages).
#include <cstdint>

#include "napi_args.h"
#include "registry.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#if !defined(MADV_COLLAPSE)
#define MADV_COLLAPSE 25  // Linux 6.1
#endif
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

/**
 * adviseHugePages(x: Uint16Array) → bytes of x's memory now advised for huge pages: the 2 MB-aligned
 * span inside it (0 where there is none, or off Linux). The span is also collapsed into huge pages
 * at once where the kernel can (MADV_COLLAPSE, Linux 6.1+); elsewhere khugepaged does it in time.
 * The values are kept either way.
 */
napi_value AdviseHugePages(Args& a) {
  const U16 x = a.u16(0, "x");
  double advised = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(x.p);
  const uintptr_t lo = (begin + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t hi = (begin + static_cast<uintptr_t>(x.n) * 2) & ~(kHuge - 1);
  if (hi > lo && madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE) == 0) {
    madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_COLLAPSE);  // best effort: EINVAL before 6.1
    advised = static_cast<double>(hi - lo);
  }
#endif
  napi_value out;
  napi_create_double(a.env(), advised, &out);
  return out;
}

}  // namespace

void registerMemory(napi_env env, napi_value exports) {
  defineFunction(env, exports, "keepLargeAllocations", entry<KeepLargeAllocations>);
  defineFunction(env, exports, "adviseHugePages", entry<AdviseHugePages>);
}

}  // namespace sc
