// Module initialisation: registers every kernel family and describes what this build uses.
#include <mutex>
#include <stdexcept>
#include <string>

#include "cpu_features.h"
#include "napi_args.h"
#include "registry.h"
#include "threads.h"

#ifdef SC_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif
#if defined(SC_HAVE_CBLAS) && defined(SC_BLAS_OPENBLAS)
extern "C" char* openblas_get_corename(void);
#endif

namespace sc {
namespace {

std::string description() {
  std::string d;
#ifdef SC_HAVE_DNNL
  const dnnl_version_t* v = dnnl_version();
  d = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
      " (gemm, conv, avg pool)";
#elif defined(SC_HAVE_CBLAS) && defined(SC_BLAS_ACCELERATE)
  d = "Accelerate BLAS (gemm, im2col conv)";
#elif defined(SC_HAVE_CBLAS)
  d = std::string("OpenBLAS/") + openblas_get_corename() + " (gemm, im2col conv)";
#else
  d = "blocked C++ gemm (no kernel library found at build time)";
#endif
  d += " + C++ kernels";
#ifdef SC_HAVE_OPENMP
  d += " (OpenMP)";
#endif
  return d;
}

void describe(napi_env env, napi_value exports) {
  napi_set_named_property(env, exports, "description", stringValue(env, description()));
  napi_value libs;
  napi_create_object(env, &libs);
#ifdef SC_HAVE_DNNL
  const bool dnnl = true;
#else
  const bool dnnl = false;
#endif
#ifdef SC_HAVE_CBLAS
  const bool cblas = true;
#else
  const bool cblas = false;
#endif
#ifdef SC_HAVE_OPENMP
  const bool omp = true;
#else
  const bool omp = false;
#endif
  napi_set_named_property(env, libs, "dnnl", boolValue(env, dnnl));
  napi_set_named_property(env, libs, "cblas", boolValue(env, cblas));
  napi_set_named_property(env, libs, "openmp", boolValue(env, omp));
  napi_set_named_property(env, exports, "libraries", libs);
}

/**
 * oneDNN's own dispatch lowered to SMOLCLUSTER_CPU's level, so that a capped process runs oneDNN's
 * kernels for that level too. Must precede oneDNN's first primitive, so it runs at module init.
 */
void capDnnlIsa() {
#ifdef SC_HAVE_DNNL
  const CpuFeatures& f = cpuFeatures();
  if (cpuLevelOf(f) == cpuLevelOf(cpuFeaturesDetected())) return;
  const dnnl_cpu_isa_t isa = f.amxBf16      ? dnnl_cpu_isa_avx512_core_amx
                             : f.avx512bf16 ? dnnl_cpu_isa_avx512_core_bf16
                             : f.avx512vnni ? dnnl_cpu_isa_avx512_core_vnni
                             : f.avx512     ? dnnl_cpu_isa_avx512_core
                             : f.avx2       ? dnnl_cpu_isa_avx2
                                            : dnnl_cpu_isa_sse41;
  // Refused only once oneDNN has dispatched already (a second addon load in one process): the first cap stands.
  dnnl_set_max_cpu_isa(isa);
#endif
}

}  // namespace
}  // namespace sc

NAPI_MODULE_INIT() {
  try {
    if (!sc::cpuCapError().empty()) throw std::invalid_argument(sc::cpuCapError());
    static std::once_flag isa;
    std::call_once(isa, sc::capDnnlIsa);
    static std::once_flag pools;  // process-wide pools: size them once, on the first load
    std::call_once(pools, sc::initThreads);
    sc::registerCpuFeatures(env, exports);
    sc::registerThreads(env, exports);
    sc::registerGemm(env, exports);
    sc::registerElementwise(env, exports);
    sc::registerLayout(env, exports);
    sc::registerReduce(env, exports);
    sc::registerRowArgmax(env, exports);
    sc::registerSoftmax(env, exports);
    sc::registerConv(env, exports);
    sc::registerPool(env, exports);
    sc::registerNorm(env, exports);
    sc::registerEmbedding(env, exports);
    sc::registerOptim(env, exports);
    sc::registerAttention(env, exports);
    sc::registerShm(env, exports);
    sc::registerFileMap(env, exports);
    sc::registerMemory(env, exports);
    sc::registerBf16(env, exports);
    sc::registerBf16Packed(env, exports);
    sc::registerAttentionBf16(env, exports);
    sc::registerAttentionDecode(env, exports);
    sc::registerLlama(env, exports);
    sc::registerLlamaDecode(env, exports);
    sc::registerQuant(env, exports);
    sc::registerQuantize(env, exports);
    sc::registerLinearWidened(env, exports);
    sc::describe(env, exports);
  } catch (...) {
    sc::reportException(env, "smolcluster native init");
    return nullptr;
  }
  return exports;
}
