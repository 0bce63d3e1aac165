// Signals held back while oneDNN's generated sgemm kernels run.
//
// oneDNN 2.6.3's jit sgemm kernels (jit_avx2/avx512_common_gemm_f32, behind `dnnl_sgemm` and the
// "gemm:jit" primitives) point rsp into a heap workspace while they run. A signal delivered then
// has its frame pushed below that address, over malloc's chunk headers, and a later free() aborts
// ("corrupted size vs. prev_size", "double free or corruption"). Node takes such signals: the V8
// profiler's SIGPROF under --cpu-prof (the bert-mini aborts that reverted a8bce1d's routing),
// SIGCHLD, SIGINT, SIGTERM. Fixed upstream in oneDNN PR #4855 (3.x, 2026); here every dnnl_sgemm
// call runs with asynchronous signals blocked on the calling thread, and OpenMP worker threads,
// which run nothing but native kernels, block them for good. A blocked signal is delivered when
// the call returns (or to another thread), so nothing is lost; a profiler sees one late sample.
#pragma once

#if !defined(_WIN32)
#include <csignal>
#include <pthread.h>
#define SC_HAVE_SIGMASK 1
#endif
#ifdef SC_HAVE_OPENMP
#include <omp.h>
#endif

namespace sc {

/** Blocks every blockable signal on the calling thread for this object's lifetime. */
class SignalsBlocked {
 public:
  SignalsBlocked() {
#ifdef SC_HAVE_SIGMASK
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved_);
#endif
  }
  ~SignalsBlocked() {
#ifdef SC_HAVE_SIGMASK
    pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
#endif
  }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
#ifdef SC_HAVE_SIGMASK
  sigset_t saved_;
#endif
};

/**
 * Makes every OpenMP worker in the calling thread's pool, for teams of up to n threads, block all
 * signals for good (thread 0, the caller, is left alone). libgomp keeps one pool per calling thread
 * and reuses its workers, so this forks once per new team size; workers created later inside a
 * SignalsBlocked window inherit the blocked mask anyway.
 */
inline void blockSignalsInOmpWorkers(int n) {
#if defined(SC_HAVE_SIGMASK) && defined(SC_HAVE_OPENMP)
  static thread_local int covered = 1;
  if (n <= covered) return;
#pragma omp parallel num_threads(n)
  {
    if (omp_get_thread_num() != 0) {
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, nullptr);
    }
  }
  covered = n;
#else
  (void)n;
#endif
}

}  // namespace sc
