// Flush-to-zero / denormals-are-zero for our kernels (x86 MXCSR FTZ + DAZ bits).
//
// Adam's moments decay into subnormal floats once gradients are zero, and every operation on a
// subnormal costs ~100 cycles on x86: the same step ran 2.3x slower (issue 13). With the mode on,
// subnormal inputs read as 0 and results that would be subnormal are written as 0 — PyTorch users
// get the same with torch.set_flush_denormal(True). The mode is set only while a kernel runs on the
// calling (JavaScript) thread and restored afterwards, so JavaScript's own double arithmetic is never
// affected; OpenMP worker threads, which run nothing but native kernels, keep it.
// On by default; SMOLCLUSTER_FLUSH_DENORMALS=0 (or setFlushDenormals(false)) turns it off.
#pragma once

#if defined(__SSE__) || defined(_M_X64)
#include <xmmintrin.h>
#define SC_HAVE_MXCSR 1
#endif

namespace sc {

bool flushDenormals();
void setFlushDenormals(bool on);

#ifdef SC_HAVE_MXCSR
constexpr unsigned kFtzDaz = 0x8040;  // MXCSR bit 15 (flush to zero) | bit 6 (denormals are zero)
#endif

/** Applies the configured mode to the calling thread for its lifetime (OpenMP workers). */
inline void applyDenormalMode() {
#ifdef SC_HAVE_MXCSR
  const unsigned cur = _mm_getcsr();
  const unsigned want = flushDenormals() ? (cur | kFtzDaz) : (cur & ~kFtzDaz);
  if (want != cur) _mm_setcsr(want);
#endif
}

/** Sets the configured mode for one kernel call on the calling thread and restores the old one. */
class DenormalScope {
 public:
  DenormalScope() {
#ifdef SC_HAVE_MXCSR
    saved_ = _mm_getcsr();
    applyDenormalMode();
#endif
  }
  ~DenormalScope() {
#ifdef SC_HAVE_MXCSR
    if (_mm_getcsr() != saved_) _mm_setcsr(saved_);
#endif
  }
  DenormalScope(const DenormalScope&) = delete;
  DenormalScope& operator=(const DenormalScope&) = delete;

 private:
  unsigned saved_ = 0;
};

}  // namespace sc
