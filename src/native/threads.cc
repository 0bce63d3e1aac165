// Thread-pool control (see threads.h).
#include "threads.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

#include "napi_args.h"

#ifdef SC_HAVE_OPENMP
#include <omp.h>
#endif

#if defined(SC_HAVE_CBLAS) && defined(SC_BLAS_OPENBLAS)
extern "C" void openblas_set_num_threads(int);
#endif

namespace sc {

static std::atomic<int> g_threads{1};

static bool initialFlush() {
  const char* env = std::getenv("SMOLCLUSTER_FLUSH_DENORMALS");
  return !(env && (env[0] == '0' || env[0] == 'f' || env[0] == 'n'));  // "0", "false", "no" turn it off
}
static std::atomic<bool> g_flush{initialFlush()};

static double initialGrainScale() {
  const char* env = std::getenv("SMOLCLUSTER_GRAIN_SCALE");
  if (!env) return 1.0;
  const double v = std::atof(env);
  return v >= 0 ? v : 1.0;
}
static const double g_grainScale = initialGrainScale();

double grainScale() { return g_grainScale; }

bool flushDenormals() { return g_flush.load(std::memory_order_relaxed); }
void setFlushDenormals(bool on) { g_flush.store(on, std::memory_order_relaxed); }

int threads() { return g_threads.load(std::memory_order_relaxed); }

void setThreads(int n) {
  n = std::max(1, n);
  g_threads.store(n, std::memory_order_relaxed);
#ifdef SC_HAVE_OPENMP
  omp_set_num_threads(n);
#endif
#if defined(SC_HAVE_CBLAS) && defined(SC_BLAS_OPENBLAS)
  openblas_set_num_threads(n);
#endif
}

void initThreads() {
  int n = static_cast<int>(std::thread::hardware_concurrency());
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    const int v = std::atoi(env);
    if (v > 0) n = v;
  }
  setThreads(n > 0 ? n : 1);
}

int threadsFor(double work, double grain) {
  const int t = threads();
  const double g = static_cast<double>(scaledGrain(grain));
  if (t <= 1 || work < 2 * g || insideFork()) return 1;
  return std::max(1, std::min(t, static_cast<int>(work / g)));
}

void useOmpThreads(int n) {
#ifdef SC_HAVE_OPENMP
  // omp_set_num_threads only writes the calling thread's ICV: cheap enough to do per call, and
  // it keeps worker_threads (which start with the process default) on the configured count.
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

static napi_value SetThreads(Args& a) {
  setThreads(static_cast<int>(a.integer(0, "n", 1, 4096)));
  return undefinedValue(a.env());
}

static napi_value GetThreads(Args& a) { return numberValue(a.env(), threads()); }

static napi_value SetFlushDenormals(Args& a) {
  setFlushDenormals(a.flag(0));
  return undefinedValue(a.env());
}

static napi_value GetFlushDenormals(Args& a) {
  return boolValue(a.env(), flushDenormals());
}

void registerThreads(napi_env env, napi_value exports) {
  defineFunction(env, exports, "setThreads", entry<SetThreads>);
  defineFunction(env, exports, "getThreads", entry<GetThreads>);
  defineFunction(env, exports, "setFlushDenormals", entry<SetFlushDenormals>);
  defineFunction(env, exports, "getFlushDenormals", entry<GetFlushDenormals>);
}

}  // namespace sc
