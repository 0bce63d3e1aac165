// bfloat16 kernels: conversions and the bf16 GEMM (bf16 A and B, float32 C and accumulation).
//
// The GEMM is oneDNN's matmul primitive with bf16 source and weights and an f32 destination (the
// C API's dnnl_sgemm has no bf16 form); on a CPU with AMX it runs brgemm's avx512_core_amx_bf16
// kernels, with AVX512-BF16 the avx512_core_bf16 ones. Transposes are strides of the memory
// descriptors, a batch is a leading dimension (stride 0 broadcasts), beta = 1 is a sum post-op and
// a linear layer's bias is fused, exactly as the float32 primitive in gemm_dnnl.cc. Primitives are
// cached per shape. Where oneDNN offers only its reference kernel (or is not built in), the
// operands are widened to float32 and the float32 GEMM runs: the same products (exact in float32)
// and float32 sums.
#include "bf16.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "cpu_features.h"
#include "dnnl_context.h"
#include "gemm.h"
#include "gemv_bf16.h"
#include "napi_args.h"
#include "registry.h"
#include "simd.h"
#include "threads.h"

// The AVX512-BF16 conversion, compiled for that target alone and chosen at run time (the binary
// itself stays baseline x86-64: binding.gyp). GCC ≥ 10 and Clang ≥ 9 have its intrinsics.
#if defined(__x86_64__) && defined(__linux__) && \
    ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10) || (defined(__clang__) && __clang_major__ >= 9))
#define SC_HAVE_AVX512BF16_PATH 1
#include <immintrin.h>
#else
#define SC_HAVE_AVX512BF16_PATH 0
#endif

namespace sc {

namespace {

constexpr int64_t kConvertGrain = 1 << 16;  // elements per thread before a conversion forks

SC_VECTOR_KERNEL(void, toBf16RangePortable, (const float* SC_RESTRICT x, uint16_t* SC_RESTRICT out, int64_t lo, int64_t hi), (x, out, lo, hi)) {
  const uint32_t* u = reinterpret_cast<const uint32_t*>(x);
  for (int64_t i = lo; i < hi; i++) out[i] = bf16Bits(u[i]);
}

#if SC_HAVE_AVX512BF16_PATH
/**
 * AVX512-BF16's vcvtneps2bf16 rounds 16 floats per instruction by bf16Bits' rule (nearest even,
 * NaN quiet, denormals to signed zero): measured 5× the integer loop's speed on a 2 Mi-element
 * buffer, which is what a step's weight and gradient roundings are made of.
 */
__attribute__((target("avx512f,avx512bf16")))
void toBf16RangeAvx512(const float* SC_RESTRICT x, uint16_t* SC_RESTRICT out, int64_t lo, int64_t hi) {
  int64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    const __m256bh b = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), reinterpret_cast<const __m256i&>(b));
  }
  const uint32_t* u = reinterpret_cast<const uint32_t*>(x);
  for (; i < hi; i++) out[i] = bf16Bits(u[i]);
}

__attribute__((target("avx512f,avx512bf16")))
void toBf16ScaledAvx512(const float* SC_RESTRICT x, float k, uint16_t* SC_RESTRICT out, int64_t n) {
  const __m512 kk = _mm512_set1_ps(k);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256bh b = _mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_loadu_ps(x + i), kk));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), reinterpret_cast<const __m256i&>(b));
  }
  for (; i < n; i++) out[i] = bf16Of(x[i] * k);
}
#endif

void toBf16Range(const float* x, uint16_t* out, int64_t lo, int64_t hi) {
#if SC_HAVE_AVX512BF16_PATH
  if (cpuFeatures().avx512bf16) return toBf16RangeAvx512(x, out, lo, hi);
#endif
  toBf16RangePortable(x, out, lo, hi);
}

SC_VECTOR_KERNEL(void, toBf16ScaledPortable, (const float* SC_RESTRICT x, float k, uint16_t* SC_RESTRICT out, int64_t n), (x, k, out, n)) {
  for (int64_t i = 0; i < n; i++) out[i] = bf16Of(x[i] * k);
}

SC_VECTOR_KERNEL(void, fromBf16Range, (const uint16_t* SC_RESTRICT x, float* SC_RESTRICT out, int64_t lo, int64_t hi), (x, out, lo, hi)) {
  uint32_t* u = reinterpret_cast<uint32_t*>(out);
  for (int64_t i = lo; i < hi; i++) u[i] = static_cast<uint32_t>(x[i]) << 16;
}

}  // namespace

void toBf16(const float* x, uint16_t* out, int64_t n) {
  parallelRange(n, kConvertGrain, [&](int64_t lo, int64_t hi) { toBf16Range(x, out, lo, hi); });
}

void toBf16Scaled(const float* x, float k, uint16_t* out, int64_t n) {
#if SC_HAVE_AVX512BF16_PATH
  if (cpuFeatures().avx512bf16) return toBf16ScaledAvx512(x, k, out, n);
#endif
  toBf16ScaledPortable(x, k, out, n);
}

void fromBf16(const uint16_t* x, float* out, int64_t n) {
  parallelRange(n, kConvertGrain, [&](int64_t lo, int64_t hi) { fromBf16Range(x, out, lo, hi); });
}

std::vector<float> widened(const uint16_t* x, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  fromBf16(x, out.data(), n);
  return out;
}

namespace {

#ifdef SC_HAVE_DNNL
using dims = dnnl::memory::dims;
using dt = dnnl::memory::data_type;

struct Bf16MatmulEntry {
  bool ok = false;  // false: only the reference kernel, or the shape refused
  std::string impl;
  dnnl::matmul prim;
  dnnl::memory a, b, c, bias;
  std::unordered_map<int, dnnl::memory> args;
};

dims strides2(bool trans, int64_t ld) { return trans ? dims{1, ld} : dims{ld, 1}; }

std::unique_ptr<Bf16MatmulEntry> createBf16Matmul(const GemmBf16& g, int64_t bA, int64_t bB) {
  auto e = std::make_unique<Bf16MatmulEntry>();
  const dims sa = strides2(g.transA, g.lda()), sb = strides2(g.transB, g.ldb());
  dnnl::memory::desc ad, bd, cd;
  if (g.batch == 1) {
    ad = dnnl::memory::desc({g.M, g.K}, dt::bf16, sa);
    bd = dnnl::memory::desc({g.K, g.N}, dt::bf16, sb);
    cd = dnnl::memory::desc({g.M, g.N}, dt::f32, dims{g.N, 1});
  } else {
    ad = dnnl::memory::desc({bA, g.M, g.K}, dt::bf16, {bA == 1 ? g.M * g.K : g.strideA, sa[0], sa[1]});
    bd = dnnl::memory::desc({bB, g.K, g.N}, dt::bf16, {bB == 1 ? g.K * g.N : g.strideB, sb[0], sb[1]});
    cd = dnnl::memory::desc({g.batch, g.M, g.N}, dt::f32, {g.strideC, g.N, 1});
  }
  const dnnl::memory::desc biasd = g.bias ? dnnl::memory::desc({1, g.N}, dt::f32, dims{g.N, 1}) : dnnl::memory::desc();
  dnnl::primitive_attr attr;
  if (g.alpha != 1) attr.set_output_scales(0, {g.alpha});
  if (g.beta != 0) {
    dnnl::post_ops po;
    po.append_sum(g.beta);
    attr.set_post_ops(po);
  }
  try {
    const dnnl::matmul::desc d = g.bias ? dnnl::matmul::desc(ad, bd, biasd, cd) : dnnl::matmul::desc(ad, bd, cd);
    dnnl::matmul::primitive_desc pd(d, attr, dnnlEngine());
    e->impl = pd.impl_info_str();
    if (e->impl.rfind("ref", 0) == 0) return e;
    e->prim = dnnl::matmul(pd);
  } catch (const dnnl::error&) {
    return e;
  }
  auto& eng = dnnlEngine();
  e->a = dnnl::memory(ad, eng, DNNL_MEMORY_NONE);
  e->b = dnnl::memory(bd, eng, DNNL_MEMORY_NONE);
  e->c = dnnl::memory(cd, eng, DNNL_MEMORY_NONE);
  e->args = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
  if (g.bias) {
    e->bias = dnnl::memory(biasd, eng, DNNL_MEMORY_NONE);
    e->args[DNNL_ARG_BIAS] = e->bias;
  }
  e->ok = true;
  return e;
}

/**
 * The float32 GEMM's grain (gemm_dnnl.cc) halved, as this comment always said, though the value
 * had been doubled (6.4e7): a prompt's products (32 rows of SmolLM2-135M, 21-57 MFLOP) then ran on
 * one thread, and bench:generate's bf16 prefill at two threads was 0.72x llama.cpp's (slower than
 * one thread); at 1.6e7 a 32-token bf16 prefill takes 81-88 ms against 109 (an Intel Xeon without
 * AMX, twenty-third session), a quarter of this grain no faster.
 */
constexpr double kBf16GrainFlops = 1.6e7;

thread_local std::string g_lastImpl = "none";

bool gemmBf16Dnnl(const GemmBf16& g) {
  const int64_t bA = g.batch > 1 && g.strideA != 0 ? g.batch : 1;
  const int64_t bB = g.batch > 1 && g.strideB != 0 ? g.batch : 1;
  const int nthr = threadsFor(2.0 * g.M * g.N * g.K * g.batch, kBf16GrainFlops);
  Key key;
  key.add(int64_t{g.transA}).add(int64_t{g.transB}).add(g.M).add(g.N).add(g.K).add(g.batch);
  key.add(bA).add(bB).add(g.strideA).add(g.strideB).add(g.strideC);
  key.add(g.alpha).add(g.beta).add(int64_t{nthr}).add(int64_t{g.bias != nullptr});
  static thread_local PrimitiveCache<Bf16MatmulEntry> cache(512);
  useOmpThreads(nthr);
  Bf16MatmulEntry* e = cache.find(key);
  if (!e) e = cache.insert(key, createBf16Matmul(g, bA, bB));
  g_lastImpl = e->impl.empty() ? "refused" : e->impl;
  if (!e->ok) return false;
  bind(e->a, g.A);
  bind(e->b, g.B);
  bind(e->c, g.C);
  if (g.bias) bind(e->bias, g.bias);
  e->prim.execute(dnnlStream(), e->args);
  dnnlStream().wait();
  return true;
}
#else
thread_local std::string g_lastImpl = "float32 fallback (no oneDNN)";
#endif

int64_t span(int64_t batch, int64_t stride, int64_t matrix) {
  return matrix == 0 ? 0 : (batch - 1) * stride + matrix;
}

/** The float32 GEMM over widened operands: the arithmetic of the bf16 primitive without it. */
void gemmBf16Widened(const GemmBf16& g) {
  const std::vector<float> A = widened(g.A, span(g.batch, g.strideA, g.M * g.K));
  const std::vector<float> B = widened(g.B, span(g.batch, g.strideB, g.K * g.N));
  Gemm f;
  f.transA = g.transA;
  f.transB = g.transB;
  f.M = g.M;
  f.N = g.N;
  f.K = g.K;
  f.alpha = g.alpha;
  f.beta = g.beta;
  f.A = A.data();
  f.B = B.data();
  f.C = g.C;
  f.bias = g.bias;
  f.lda = g.lda();
  f.ldb = g.ldb();
  f.ldc = g.N;
  f.strideA = g.strideA;
  f.strideB = g.strideB;
  f.strideC = g.strideC;
  f.batch = g.batch;
  sgemm(f);
}

/** x·Wᵀ with a few rows of x (decode's linears) by gemv_bf16.cc, where it applies. */
bool gemmBf16Thin(const GemmBf16& g) {
  if (g.transA || !g.transB || g.batch != 1 || g.K == 0 || g.alpha == 0) return false;
  const char* kernel = thinBf16Product(g);
  if (!kernel) return false;
  g_lastImpl = kernel;
  return true;
}

}  // namespace

void gemmBf16(const GemmBf16& g) {
  if (gemmBf16Thin(g)) return;
#ifdef SC_HAVE_DNNL
  if (g.K > 0 && g.alpha != 0 && gemmBf16Dnnl(g)) return;
#else
  g_lastImpl = "float32 fallback (no oneDNN)";  // not the thin kernel's name from an earlier product
#endif
  gemmBf16Widened(g);
}

namespace {

// gemmBf16(transA, transB, M, N, K, alpha, A, strideA, B, strideB, beta, C, strideC, batch[, bias|null])
napi_value GemmBf16Kernel(Args& a) {
  GemmBf16 g;
  g.transA = a.flag(0);
  g.transB = a.flag(1);
  g.M = a.integer(2, "M");
  g.N = a.integer(3, "N");
  g.K = a.integer(4, "K");
  g.alpha = static_cast<float>(a.num(5, "alpha"));
  const U16 A = a.u16(6, "A");
  g.strideA = a.integer(7, "strideA");
  const U16 B = a.u16(8, "B");
  g.strideB = a.integer(9, "strideB");
  g.beta = static_cast<float>(a.num(10, "beta"));
  const F32 C = a.f32(11, "C");
  g.strideC = a.integer(12, "strideC");
  g.batch = a.integer(13, "batch");
  const F32 bias = a.argCount() > 14 ? a.f32OrNull(14, "bias") : F32{};
  if (g.batch == 0 || g.M == 0 || g.N == 0) return undefinedValue(a.env());
  if (bias.p) {
    a.need(bias, g.N, "bias");
    if (g.beta != 0) throwRange("gemmBf16: a bias needs beta = 0");
    if (g.strideC == 0 && g.batch > 1) throwRange("gemmBf16: a bias needs a C per batch entry (strideC > 0)");
    g.bias = bias.p;
  }
  a.need(A, span(g.batch, g.strideA, g.M * g.K), "A");
  a.need(B, span(g.batch, g.strideB, g.K * g.N), "B");
  a.need(C, span(g.batch, g.strideC, g.M * g.N), "C");
  g.A = A.p;
  g.B = B.p;
  g.C = C.p;
  if (g.strideC == 0 && g.batch > 1) {
    // Every product lands in the same C: one at a time, in order, as the contract's loop reads.
    GemmBf16 one = g;
    one.batch = 1;
    for (int64_t b = 0; b < g.batch; b++) {
      one.A = g.A + b * g.strideA;
      one.B = g.B + b * g.strideB;
      gemmBf16(one);
    }
    return undefinedValue(a.env());
  }
  gemmBf16(g);
  return undefinedValue(a.env());
}

napi_value ToBf16Kernel(Args& a) {
  const F32 x = a.f32(0, "x");
  const U16 out = a.u16(1, "out");
  a.need(x, out.n, "x");
  toBf16(x.p, out.p, out.n);
  return undefinedValue(a.env());
}

napi_value FromBf16Kernel(Args& a) {
  const U16 x = a.u16(0, "x");
  const F32 out = a.f32(1, "out");
  a.need(x, out.n, "x");
  fromBf16(x.p, out.p, out.n);
  return undefinedValue(a.env());
}

/** Test/benchmark hook: the oneDNN implementation the last bf16 GEMM ran (or why none). */
napi_value LastBf16GemmImpl(Args& a) { return stringValue(a.env(), g_lastImpl); }

}  // namespace

void registerBf16(napi_env env, napi_value exports) {
  defineFunction(env, exports, "toBf16", entry<ToBf16Kernel>);
  defineFunction(env, exports, "fromBf16", entry<FromBf16Kernel>);
  defineFunction(env, exports, "gemmBf16", entry<GemmBf16Kernel>);
  defineFunction(env, exports, "lastBf16GemmImpl", entry<LastBf16GemmImpl>);
}

}  // namespace sc
