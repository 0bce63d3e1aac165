// One thread count for every pool the addon touches: the OpenMP team used by oneDNN and by our own
// loops, and OpenBLAS's pthread pool. Pools sized independently oversubscribe the cores and fight.
#pragma once

#include <algorithm>
#include <cstdint>

#include "denormals.h"

#ifdef SC_HAVE_OPENMP
#include <omp.h>
#endif

namespace sc {

/** The configured thread count (>= 1). */
int threads();

/** Sets every pool to n threads (OpenMP, OpenBLAS, our loops). */
void setThreads(int n);

/** Applies the initial count: OMP_NUM_THREADS if set, else the number of cores. */
void initThreads();

/**
 * Every grain below is multiplied by this (1 unless SMOLCLUSTER_GRAIN_SCALE is set at load). A bench
 * knob: bench/threads.ts sets 0 to fork at every size and so measure where 2 threads start to win.
 */
double grainScale();

/** `grain` after grainScale(), at least 1. */
inline int64_t scaledGrain(double grain) { return std::max<int64_t>(1, static_cast<int64_t>(grain * grainScale())); }

/**
 * Threads worth using for `work` units when one thread should get at least `grain` of them:
 * small kernels run single-threaded because waking a team costs more than it saves, and so does a
 * kernel called inside a forked region (its caller split the work already).
 */
int threadsFor(double work, double grain);

/** Whether the calling thread runs inside a forked region (a kernel called from a parallel loop): it forks no further. */
inline bool insideFork() {
#ifdef SC_HAVE_OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

/** Whether a loop over `work` units should fork (>1 thread configured, enough work, not inside a fork). */
inline bool parallel(int64_t work, int64_t grain = 32768) { return threads() > 1 && work >= 2 * scaledGrain(grain) && !insideFork(); }

/** Sets the calling thread's OpenMP team size for the next library call (no-op without OpenMP). */
void useOmpThreads(int n);

/**
 * Runs fn(lo, hi) over [0, n) split into equal contiguous chunks, one per thread when the work
 * is large enough, else once on the calling thread. The chunk function is where SIMD code lives
 * (an OpenMP-outlined loop body would lose a multi-versioned function's target attributes).
 */
template <class Fn>
void parallelRange(int64_t n, int64_t grain, Fn&& fn) {
#ifdef SC_HAVE_OPENMP
  if (parallel(n, grain)) {
    const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads(), n / scaledGrain(grain))));
#pragma omp parallel num_threads(nt)
    {
      applyDenormalMode();
      const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
      const int64_t lo = n * t / T, hi = n * (t + 1) / T;
      if (lo < hi) fn(lo, hi);
    }
    return;
  }
#endif
  (void)grain;
  if (n > 0) fn(int64_t{0}, n);
}

}  // namespace sc
