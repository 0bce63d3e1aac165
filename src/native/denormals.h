// Flush-to-zero / denormals-are-zero for our kernels (x86 MXCSR FTZ + DAZ bits; arm64 FPCR.FZ, which
// flushes subnormal inputs and results alike).
//
// Adam's moments decay into subnormal floats once gradients are zero, and every operation on a
// subnormal costs ~100 cycles on x86: the same step ran 2.3x slower (issue 13). With the mode on,
// subnormal inputs read as 0 and results that would be subnormal are written as 0 — PyTorch users
// get the same with torch.set_flush_denormal(True). The mode is set only while a kernel runs on the
// calling (JavaScript) thread and restored afterwards, so JavaScript's own double arithmetic is never
// affected; OpenMP worker threads, which run nothing but native kernels, keep it.
// On by default; SMOLCLUSTER_FLUSH_DENORMALS=0 (or setFlushDenormals(false)) turns it off. Apple's
// cores take subnormals at full speed; arm64 flushes all the same, so every CPU computes alike.
#pragma once

#include <cstdint>

#if defined(__SSE__) || defined(_M_X64)
#include <xmmintrin.h>
#define SC_HAVE_FLUSH_MODE 1
#endif

namespace sc {

bool flushDenormals();
void setFlushDenormals(bool on);

#if defined(SC_HAVE_FLUSH_MODE)
using FpMode = unsigned;
constexpr FpMode kFlushBits = 0x8040;  // MXCSR bit 15 (flush to zero) | bit 6 (denormals are zero)
inline FpMode readFpMode() { return _mm_getcsr(); }
inline void writeFpMode(FpMode m) { _mm_setcsr(m); }
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define SC_HAVE_FLUSH_MODE 1
using FpMode = uint64_t;
constexpr FpMode kFlushBits = FpMode{1} << 24;  // FPCR.FZ
inline FpMode readFpMode() {
  FpMode v;
  __asm__ volatile("mrs %0, fpcr" : "=r"(v));
  return v;
}
inline void writeFpMode(FpMode m) { __asm__ volatile("msr fpcr, %0" : : "r"(m)); }
#endif

#ifdef SC_HAVE_FLUSH_MODE
/** Flushes (or keeps) subnormals on the calling thread; the mode it had. */
inline FpMode setFlushMode(bool flush) {
  const FpMode cur = readFpMode();
  const FpMode want = flush ? (cur | kFlushBits) : (cur & ~kFlushBits);
  if (want != cur) writeFpMode(want);
  return cur;
}
#endif

/** Applies the configured mode to the calling thread for its lifetime (OpenMP workers). */
inline void applyDenormalMode() {
#ifdef SC_HAVE_FLUSH_MODE
  setFlushMode(flushDenormals());
#endif
}

/**
 * Sets the configured mode for one kernel call on the calling thread (or, with `flush`, that mode
 * whatever is configured) and restores the old one.
 */
class DenormalScope {
 public:
  DenormalScope() : DenormalScope(flushDenormals()) {}
  explicit DenormalScope(bool flush) {
#ifdef SC_HAVE_FLUSH_MODE
    saved_ = setFlushMode(flush);
#else
    (void)flush;
#endif
  }
  ~DenormalScope() {
#ifdef SC_HAVE_FLUSH_MODE
    if (readFpMode() != saved_) writeFpMode(saved_);
#endif
  }
  DenormalScope(const DenormalScope&) = delete;
  DenormalScope& operator=(const DenormalScope&) = delete;

 private:
#ifdef SC_HAVE_FLUSH_MODE
  FpMode saved_ = 0;
#endif
};

}  // namespace sc
