// The `gemm` kernel: validation, then the fastest engine for the shape.
//
// Measured on a Zen-class core, one thread, through N-API (docs/NATIVE.md has the table): the
// cached matmul primitive runs the MLP/CNN shapes at 175-230 GFLOP/s (OpenBLAS: 80-105) but costs
// ~0.8 µs per call and is 2x slower than dnnl_sgemm when M or N is tiny (1x128x784: 11 vs 4.6 µs);
// products of at most ~2K multiply-adds are fastest in our own unpacked loops (8x8x8: 0.45 vs
// 0.8 µs). On the AVX-512 Xeon the project benchmarks on, oneDNN 2.6.3's matmul primitive (brgemm)
// drops to 25-35 GFLOP/s on some single products whose B is not transposed (every linear layer's
// backward, e.g. gpt2's [512,3072]·[3072,768] and [768,512]ᵀ·[512,3072]) and to 100-125 on the
// vocabulary heads (x·Eᵀ, N = 30522-50257), where dnnl_sgemm runs all of them at 140-165; batched
// small products (attention's 48 × 128×128×64) are 5-15 % faster as one primitive than as a loop of
// dnnl_sgemm calls (`node dist/bench/native-gemm.js --transformer`). So: own loops for tiny
// products, the matmul primitive for batches, for x·Wᵀ with a bias (which it fuses) and for a
// layer's x·Wᵀ over a few hundred rows at most (gemm.h layerRowsProduct), dnnl_sgemm for the rest.
// Except x·Wᵀ with 1-12 rows of x (decode), where oneDNN packs W per call from 4 rows and reads it
// at a third of one row's speed: our thin kernel (gemm_thin.cc) reads it once, and at 1-3 rows it
// streams W a little faster than dnnl_sgemm's matrix-vector path (gemm.h).
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>

#include "gemm.h"
#include "napi_args.h"
#include "registry.h"

#ifdef SC_HAVE_CBLAS
#ifdef SC_BLAS_ACCELERATE
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif
#endif

namespace sc {

namespace {

enum class Engine { Auto, Matmul, DnnlSgemm, Cblas, Thin, Own };
Engine g_engine = Engine::Auto;
std::atomic<const char*> g_lastEngine{"none"};  // the engine the latest product ran on (tests)

constexpr int64_t kTinyGemm = 2048;  // M·N·K at or below which library call overhead dominates
constexpr int64_t kThin = 4;         // M or N at most this: a matrix-vector-like product

/** C = bias broadcast over rows, for the engines without a fused bias: then C += op(A)·op(B). */
Gemm withBiasCopied(const Gemm& g) {
  Gemm out = g;
  for (int64_t b = 0; b < g.batch; b++)
    for (int64_t i = 0; i < g.M; i++) std::memcpy(g.C + b * g.strideC + i * g.ldc, g.bias, sizeof(float) * g.N);
  out.bias = nullptr;
  out.beta = 1;
  return out;
}

}  // namespace

#ifdef SC_HAVE_CBLAS
void gemmCblas(const Gemm& g) {
  for (int64_t b = 0; b < g.batch; b++) {
    cblas_sgemm(CblasRowMajor, g.transA ? CblasTrans : CblasNoTrans, g.transB ? CblasTrans : CblasNoTrans,
                static_cast<int>(g.M), static_cast<int>(g.N), static_cast<int>(g.K), g.alpha,
                g.A + b * g.strideA, static_cast<int>(g.lda), g.B + b * g.strideB, static_cast<int>(g.ldb),
                g.beta, g.C + b * g.strideC, static_cast<int>(g.ldc));
  }
}
#endif

void sgemm(const Gemm& given) {
  if (given.M == 0 || given.N == 0 || given.batch == 0) return;
  Gemm g = given;
  Engine e = g_engine;
  if (g.K == 0 || g.alpha == 0) e = Engine::Own;  // C = beta·C only; libraries differ on K = 0
  // A few rows of x against W [N, K]: our thin kernel reads W once for all of them (gemm_thin.cc).
  const bool thin = g.M >= kThinGemmMinRows && g.M <= kThinGemmAutoRows && g.M * g.N * g.K > kTinyGemm && gemmThinApplies(g);
  if (e == Engine::Thin || (e == Engine::Auto && thin)) {
    if (gemmThin(g)) {
      g_lastEngine.store("thin", std::memory_order_relaxed);
      return;
    }
    e = Engine::Auto;
  }
  if (e == Engine::Auto) {
#if defined(SC_HAVE_DNNL)
    if (g.M * g.N * g.K <= kTinyGemm) e = Engine::Own;
    else if (g.M <= kThin || g.N <= kThin) e = Engine::DnnlSgemm;
    else if (g.batch > 1 || g.bias || layerRowsProduct(g)) e = Engine::Matmul;
    else e = Engine::DnnlSgemm;
#elif defined(SC_HAVE_CBLAS)
    e = g.M * g.N * g.K <= kTinyGemm ? Engine::Own : Engine::Cblas;
#else
    e = Engine::Own;
#endif
  }
#ifdef SC_HAVE_DNNL
  if (e == Engine::Matmul) {
    g_lastEngine.store("dnnl", std::memory_order_relaxed);
    if (gemmDnnlMatmul(g)) return;
    e = Engine::DnnlSgemm;
  }
#endif
  if (g.bias) g = withBiasCopied(g);
  switch (e) {
#ifdef SC_HAVE_DNNL
    case Engine::DnnlSgemm: g_lastEngine.store("dnnl_sgemm", std::memory_order_relaxed); gemmDnnlSgemm(g); return;
#endif
#ifdef SC_HAVE_CBLAS
    case Engine::Cblas: g_lastEngine.store("cblas", std::memory_order_relaxed); gemmCblas(g); return;
#endif
    default: g_lastEngine.store("own", std::memory_order_relaxed); gemmOwn(g); return;
  }
}

const char* gemmEngine() {
  switch (g_engine) {
    case Engine::Matmul: return "dnnl";
    case Engine::DnnlSgemm: return "dnnl_sgemm";
    case Engine::Cblas: return "cblas";
    case Engine::Thin: return "thin";
    case Engine::Own: return "own";
    default: return "auto";
  }
}

bool setGemmEngine(const char* name) {
  const std::string n(name);
  if (n == "auto") g_engine = Engine::Auto;
  else if (n == "own") g_engine = Engine::Own;
  else if (n == "thin") g_engine = Engine::Thin;  // where it applies; the auto choice elsewhere
#ifdef SC_HAVE_DNNL
  else if (n == "dnnl") g_engine = Engine::Matmul;
  else if (n == "dnnl_sgemm") g_engine = Engine::DnnlSgemm;
#endif
#ifdef SC_HAVE_CBLAS
  else if (n == "cblas") g_engine = Engine::Cblas;
#endif
  else return false;
  return true;
}

namespace {

/** Elements a batched operand spans: (batch-1)·stride + one matrix. */
int64_t span(int64_t batch, int64_t stride, int64_t matrix) {
  return matrix == 0 ? 0 : (batch - 1) * stride + matrix;
}

// gemm(transA, transB, M, N, K, alpha, A, strideA, B, strideB, beta, C, strideC, batch[, bias|null])
napi_value GemmKernel(Args& a) {
  Gemm g;
  g.transA = a.flag(0);
  g.transB = a.flag(1);
  g.M = a.integer(2, "M");
  g.N = a.integer(3, "N");
  g.K = a.integer(4, "K");
  g.alpha = static_cast<float>(a.num(5, "alpha"));
  const F32 A = a.f32(6, "A");
  g.strideA = a.integer(7, "strideA");
  const F32 B = a.f32(8, "B");
  g.strideB = a.integer(9, "strideB");
  g.beta = static_cast<float>(a.num(10, "beta"));
  const F32 C = a.f32(11, "C");
  g.strideC = a.integer(12, "strideC");
  g.batch = a.integer(13, "batch");
  const F32 bias = a.argCount() > 14 ? a.f32OrNull(14, "bias") : F32{};
  if (g.batch == 0 || g.M == 0 || g.N == 0) return undefinedValue(a.env());
  if (bias.p) {
    a.need(bias, g.N, "bias");
    if (g.beta != 0) throwRange("gemm: a bias needs beta = 0");
    if (g.strideC == 0 && g.batch > 1) throwRange("gemm: a bias needs a C per batch entry (strideC > 0)");
    g.bias = bias.p;
  }
  a.need(A, span(g.batch, g.strideA, g.M * g.K), "A");
  a.need(B, span(g.batch, g.strideB, g.K * g.N), "B");
  a.need(C, span(g.batch, g.strideC, g.M * g.N), "C");
  g.A = A.p;
  g.B = B.p;
  g.C = C.p;
  g.lda = g.transA ? g.M : g.K;
  g.ldb = g.transB ? g.K : g.N;
  g.ldc = g.N;
  if (g.strideC == 0 && g.batch > 1) {
    // Every product lands in the same C: run them in order, exactly as the contract's loop reads.
    Gemm one = g;
    one.batch = 1;
    for (int64_t b = 0; b < g.batch; b++) {
      one.A = g.A + b * g.strideA;
      one.B = g.B + b * g.strideB;
      sgemm(one);
    }
    return undefinedValue(a.env());
  }
  sgemm(g);
  return undefinedValue(a.env());
}

/** Test/benchmark hook: setGemmEngine("auto"|"dnnl"|"dnnl_sgemm"|"cblas"|"thin"|"own"). */
napi_value SetGemmEngine(Args& a) {
  const std::string name = a.str(0, "engine");
  if (!setGemmEngine(name.c_str()))
    throwRange(std::string("setGemmEngine: engine '") + name + "' is not compiled into this addon");
  return undefinedValue(a.env());
}

napi_value GetGemmEngine(Args& a) { return stringValue(a.env(), gemmEngine()); }

/** Test hook: the engine the latest product ran on ("thin", "dnnl", "dnnl_sgemm", "cblas", "own"). */
napi_value LastGemmEngine(Args& a) { return stringValue(a.env(), g_lastEngine.load(std::memory_order_relaxed)); }

}  // namespace

void registerGemm(napi_env env, napi_value exports) {
  defineFunction(env, exports, "gemm", entry<GemmKernel>);
  defineFunction(env, exports, "setGemmEngine", entry<SetGemmEngine>);
  defineFunction(env, exports, "getGemmEngine", entry<GetGemmEngine>);
  defineFunction(env, exports, "lastGemmEngine", entry<LastGemmEngine>);
}

}  // namespace sc
