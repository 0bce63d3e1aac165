// The quantized weights' kernels (src/tensor/quant/kernels.ts QuantKernels) for the native backend:
//   quantLinear           y = x·Wᵀ (+ bias): up to kQuantDotRows rows of x (decode) on quantized
//                         activations and integer dot products (quant_dot*.cc, the best ISA the CPU
//                         table allows); more rows (prefill) through tiles of kQuantTileRows rows of W
//                         dequantized into float32 scratch and the fp32 GEMM (gemm.h), so no dense
//                         copy of W is ever held. NF4 (no integer codes: its levels are a normal's
//                         quantiles) and F16 (floats: its product is the float32 one of the widened
//                         values, never of x quantized) take the tiles + GEMM at every M; F16 up to
//                         kWidenedThinRows rows of x widens W where it reads it instead. Under a bf16 step the tiles
//                         and x are rounded to bf16 for the bf16 GEMM (quant_tiles_bf16.cc).
//   quantLinearInputGrad  gx += gy·W through the same tiles and the GEMM (bf16 likewise).
//   quantDequantize       rows of W as float32, bit for bit the js reference's (quant_dequant.cc).
//   quantEmbedding        the rows ids name, likewise.
// lastQuantImpl() names the path the latest quantLinear took ("generic", "avx2", "avx512-vnni",
// "neon-dotprod", "f16-widened", "dequant+gemm", "dequant+gemm-bf16"), for tests.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "gemm.h"
#include "linear_widened.h"
#include "napi_args.h"
#include "quant_dot.h"
#include "quant_linear.h"
#include "quant_rows8.h"
#include "quant_tiles_int8.h"
#include "registry.h"
#include "simd.h"
#include "threads.h"

#ifdef SC_AVX2_TARGET
#include <immintrin.h>
#endif

namespace sc {

/**
 * One block of 32 values of x: its scale d, codes q and the two halves' d·Σq (quantizeBlocksAvx2
 * and quantizeBlocksAvx512 are the same on x86 with AVX2 and AVX-512).
 */
static inline __attribute__((always_inline)) void quantizeBlock32(const float* SC_RESTRICT xb, int8_t* SC_RESTRICT qb, float* d, float* s) {
  float amax = 0.0f;
  int bad = 0;
#pragma omp simd reduction(max : amax) reduction(| : bad)
  for (int j = 0; j < 32; j++) {
    const float a = std::fabs(xb[j]);
    amax = std::max(amax, a);
    bad |= !(a <= std::numeric_limits<float>::max());
  }
  // A NaN or infinity in the block makes its scale NaN (codes 0), so every output it reaches is NaN
  // rather than a finite number that hides it.
  const float db = bad ? std::numeric_limits<float>::quiet_NaN() : amax / 127.0f;
  const float id = !bad && db != 0.0f ? 1.0f / db : 0.0f;
  int32_t s0 = 0, s1 = 0;
#pragma omp simd reduction(+ : s0)
  for (int j = 0; j < 16; j++) {
    // |x·id| ≤ 127 (to a rounding), so the nearest integer fits.
    const float v = std::min(127.0f, std::max(-127.0f, std::nearbyint(xb[j] * id)));
    qb[j] = static_cast<int8_t>(v);
    s0 += static_cast<int32_t>(v);
  }
#pragma omp simd reduction(+ : s1)
  for (int j = 16; j < 32; j++) {
    const float v = std::min(127.0f, std::max(-127.0f, std::nearbyint(xb[j] * id)));
    qb[j] = static_cast<int8_t>(v);
    s1 += static_cast<int32_t>(v);
  }
  *d = db;
  s[0] = db * static_cast<float>(s0);
  s[1] = db * static_cast<float>(s1);
}

/** Blocks [b0, b1) of x, quantizeBlock32 each (GCC leaves its rounding loops scalar on x86: quantizeBlocksAvx2 there). */
static void quantizeBlocksGeneric(const float* x, int64_t b0, int64_t b1, int8_t* q, float* d, float* s) {
  for (int64_t b = b0; b < b1; b++) quantizeBlock32(x + 32 * b, q + 32 * b, d + b, s + 2 * b);
}

#ifdef SC_AVX2_TARGET
/**
 * quantizeBlock32 in AVX2 registers, the same arithmetic element for element: |x| and its maximum
 * (exact in any order), d = amax/127 and 1/d in scalar, x·(1/d) rounded to nearest-even, max with
 * −127 first (a NaN gives −127, as std::max(−127, NaN) does) then min with 127, and the halves'
 * int32 sums. GCC kept quantizeBlock32's rounding loops scalar (vroundss a value): ~35 ns a block,
 * 80 % of a one-tile 32-row product; here ~12.
 */
__attribute__((target(SC_AVX2_TARGET))) static void quantizeBlocksAvx2(const float* x, int64_t b0, int64_t b1, int8_t* q, float* d, float* s) {
  const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), largest = _mm256_set1_ps(std::numeric_limits<float>::max());
  const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  const __m256i byteOrder = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = b0; b < b1; b++) {
    const float* xb = x + 32 * b;
    __m256 v[4], top = _mm256_setzero_ps();
    int bad = 0;
    for (int i = 0; i < 4; i++) {
      v[i] = _mm256_loadu_ps(xb + 8 * i);
      const __m256 a = _mm256_and_ps(v[i], magnitude);
      bad |= _mm256_movemask_ps(_mm256_cmp_ps(a, largest, _CMP_NLE_UQ));  // infinite or NaN
      top = _mm256_max_ps(top, a);
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(top), _mm256_extractf128_ps(top, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    const float amax = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
    const float db = bad ? std::numeric_limits<float>::quiet_NaN() : amax / 127.0f;
    const __m256 id = _mm256_set1_ps(!bad && db != 0.0f ? 1.0f / db : 0.0f);
    __m256i c[4];
    for (int i = 0; i < 4; i++) {
      const __m256 r = _mm256_round_ps(_mm256_mul_ps(v[i], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      c[i] = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
    }
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * b), _mm256_permutevar8x32_epi32(bytes, byteOrder));
    const __m256i h0 = _mm256_add_epi32(c[0], c[1]), h1 = _mm256_add_epi32(c[2], c[3]);
    // Both halves' lanes summed side by side: hadd pairs them within each 128-bit lane.
    __m256i both = _mm256_hadd_epi32(h0, h1);
    both = _mm256_hadd_epi32(both, both);
    const int32_t s0 = _mm256_extract_epi32(both, 0) + _mm256_extract_epi32(both, 4);
    const int32_t s1 = _mm256_extract_epi32(both, 1) + _mm256_extract_epi32(both, 5);
    d[b] = db;
    s[2 * b] = db * static_cast<float>(s0);
    s[2 * b + 1] = db * static_cast<float>(s1);
  }
}

/**
 * quantizeBlock32 for up to 16 blocks at a time in 512-bit registers, the same arithmetic: each
 * block's |x| maximum (exact in any order), then d = amax/127 and 1/d for all 16 in two vector
 * divisions (correctly rounded, as the scalar ones are), x·(1/d) to nearest-even, max with −127 (a
 * NaN gives −127) then min with 127, the halves' int32 sums. quantizeBlocksAvx2 divides twice a
 * block in scalar, one division waiting on the other: 1.5 % of a SmolLM2-135M Q4_0 decode token in
 * perf (AMD EPYC; ~3,100 blocks a token), 1.2 % with this.
 */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq," SC_AVX2_TARGET))) static void quantizeBlocksAvx512(const float* x, int64_t b0, int64_t b1, int8_t* q,
                                                                                                       float* d, float* s) {
  const __m512 largest = _mm512_set1_ps(std::numeric_limits<float>::max()), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  for (int64_t g = b0; g < b1; g += 16) {
    const int n = static_cast<int>(std::min<int64_t>(16, b1 - g));
    alignas(64) float scale[16] = {}, inverse[16];
    unsigned bad = 0;
    for (int i = 0; i < n; i++) {
      const float* xb = x + 32 * (g + i);
      const __m512 a0 = _mm512_abs_ps(_mm512_loadu_ps(xb)), a1 = _mm512_abs_ps(_mm512_loadu_ps(xb + 16));
      if ((_mm512_cmp_ps_mask(a0, largest, _CMP_NLE_UQ) | _mm512_cmp_ps_mask(a1, largest, _CMP_NLE_UQ)) != 0) bad |= 1u << i;  // infinite or NaN
      scale[i] = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
    }
    const __mmask16 finite = static_cast<__mmask16>(~bad);
    const __m512 db = _mm512_mask_div_ps(_mm512_set1_ps(std::numeric_limits<float>::quiet_NaN()), finite, _mm512_load_ps(scale), _mm512_set1_ps(127.0f));
    const __mmask16 divisible = _mm512_mask_cmp_ps_mask(finite, db, _mm512_setzero_ps(), _CMP_NEQ_OQ);
    _mm512_store_ps(scale, db);
    _mm512_store_ps(inverse, _mm512_maskz_div_ps(divisible, _mm512_set1_ps(1.0f), db));
    for (int i = 0; i < n; i++) {
      const int64_t b = g + i;
      const __m512 id = _mm512_set1_ps(inverse[i]);
      __m512i c[2];
      for (int h = 0; h < 2; h++) {
        const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(x + 32 * b + 16 * h), id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        c[h] = _mm512_cvttps_epi32(_mm512_min_ps(_mm512_max_ps(r, lo), hi));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * b + 16 * h), _mm512_cvtepi32_epi8(c[h]));
      }
      d[b] = scale[i];
      s[2 * b] = scale[i] * static_cast<float>(_mm512_reduce_add_epi32(c[0]));
      s[2 * b + 1] = scale[i] * static_cast<float>(_mm512_reduce_add_epi32(c[1]));
    }
  }
}
#endif

/** Blocks [b0, b1) of x on the widest quantizer the CPU (and the SMOLCLUSTER_CPU cap) allows. */
static void quantizeBlocks(const float* x, int64_t b0, int64_t b1, int8_t* q, float* d, float* s) {
#ifdef SC_AVX2_TARGET
  if (cpuFeatures().avx512) return quantizeBlocksAvx512(x, b0, b1, q, d, s);
  if (cpuFeatures().avx2) return quantizeBlocksAvx2(x, b0, b1, q, d, s);
#endif
  quantizeBlocksGeneric(x, b0, b1, q, d, s);
}

/** Blocks per thread before x's quantization splits over the threads (a prefill's 32 rows of 576: 576 blocks, ~7 µs on one). */
constexpr int64_t kQuantizeGrainBlocks = 256;

void quantizeActivations(const float* x, int64_t M, int64_t K, int8_t* q, float* d, float* s) {
  parallelRange(M * K / 32, kQuantizeGrainBlocks, [&](int64_t lo, int64_t hi) { quantizeBlocks(x, lo, hi, q, d, s); });
}

void ActivationRows::reset(const float* x, int64_t M, int64_t K) {
  x_ = x;
  M_ = M;
  K_ = K;
  quantized_ = k_ = q6_ = false;
  for (int& c : centres_) c = 0;
}

/** v holding at least n elements (its capacity kept: grown, never shrunk). */
template <class T>
static T* atLeast(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

void ActivationRows::quantize() {
  if (quantized_) return;
  quantizeActivations(x_, M_, K_, atLeast(q_, M_ * K_), atLeast(d_, M_ * K_ / 32), atLeast(s_, M_ * K_ / 16));
  quantized_ = true;
}

const int8_t* ActivationRows::codes() { return quantize(), q_.data(); }
const float* ActivationRows::scales() { return quantize(), d_.data(); }
const float* ActivationRows::halfSums() { return quantize(), s_.data(); }

const int64_t* ActivationRows::starts(int centre) {
  int i = 0;
  while (i < 2 && centres_[i] != centre && centres_[i] != 0) i++;
  if (centres_[i] != centre) {
    // A fourth centre (none of ours asks for one) takes the last slot over.
    rows8Starts(codes(), M_, K_, centre, atLeast(starts_[i], M_ * K_ / 32));
    centres_[i] = centre;
  }
  return starts_[i].data();
}

void ActivationRows::makeK() {
  if (k_) return;
  rows8KX(codes(), scales(), M_, K_, atLeast(pairs_, M_ * K_), atLeast(minTerms_, M_ * K_ / 32));
  k_ = true;
}

const int8_t* ActivationRows::kPairs() { return makeK(), pairs_.data(); }
const float* ActivationRows::kMinTerms() { return makeK(), minTerms_.data(); }

void ActivationRows::makeQ6() {
  if (q6_) return;
  rows8Q6KX(codes(), M_, K_, atLeast(lanes_, M_ * K_));
  rows8Starts(lanes_.data(), M_, K_, 32, atLeast(q6Starts_, M_ * K_ / 32));
  q6_ = true;
}

const int8_t* ActivationRows::q6Lanes() { return makeQ6(), lanes_.data(); }
const int64_t* ActivationRows::q6Starts() { return makeQ6(), q6Starts_.data(); }

namespace {

std::atomic<const char*> g_lastImpl{"none"};

/**
 * "auto" (integer path up to kQuantDotRows rows of x), "dot" (always, for the formats that have an
 * integer path: NF4 and F16 still take the tiles) or "gemm" (always tiles + GEMM): benchmarks and tests.
 */
enum class QuantPath : int { Auto, Dot, Gemm };
std::atomic<QuantPath> g_path{QuantPath::Auto};

QFmt formatArg(Args& a, size_t i) {
  return static_cast<QFmt>(a.integer(i, "format", 0, static_cast<int64_t>(QFmt::Count) - 1));
}

/** Bytes of a row of K weights; K must be whole blocks. */
int64_t rowBytes(Args& a, QFmt f, int64_t K) {
  const QTraits& t = qtraits(f);
  if (K % t.blockWeights != 0)
    throwRange(std::string(a.fn()) + ": a row of " + std::to_string(K) + " values is not a whole number of " + t.name +
               " blocks (" + std::to_string(t.blockWeights) + " weights each)");
  return qRowBytes(f, K);
}

U8 weightArg(Args& a, size_t i, QFmt f, int64_t rows, int64_t K) {
  const U8 w = a.u8(i, "w");
  // An interleaved format's last row is read from its whole group of eight.
  const int64_t need = (qRows8(f) ? (rows + kRows8 - 1) / kRows8 * kRows8 : rows) * rowBytes(a, f, K);
  if (w.n < need)
    throwRange(std::string(a.fn()) + ": the weight has " + std::to_string(w.n) + " bytes, " + std::to_string(rows) +
               " rows of " + std::to_string(K) + " " + qtraits(f).name + " weights need " + std::to_string(need));
  return w;
}

/** Which integer kernel the CPU table allows (the dot product's ISA), and its name. */
using DotFn = void (*)(const QuantDot&, int64_t, int64_t);
DotFn dotKernel(const char** name) {
  const CpuFeatures& f = cpuFeatures();
#if defined(__x86_64__)
  if (f.avx512 && f.avx512vnni) {
    *name = "avx512-vnni";
    return quantDotVnni;
  }
  if (f.avx2) {
    *name = "avx2";
    return quantDotAvx2;
  }
#elif defined(__aarch64__)
  if (f.dotprod) {
    *name = "neon-dotprod";
    return quantDotNeonDot;
  }
#endif
  (void)f;
  *name = "generic";
  return quantDotGeneric;
}

/** The formats whose 512-bit rows kernel takes groups of four blocks (quant_rows_avx512.cc GroupRowStep). */
constexpr bool groupRowsFormat(QFmt f) { return f == QFmt::Q8_0 || f == QFmt::Q4_0 || f == QFmt::Q5_0 || f == QFmt::Q4_1 || f == QFmt::Q5_1; }
/** Of those, the ones measured against the tiles up to 32 rows (kQuantRowsAvx512Rows; Q4_1 and Q5_1 not past 12). */
constexpr bool rowsTo32Format(QFmt f) { return f == QFmt::Q8_0 || f == QFmt::Q4_0 || f == QFmt::Q5_0; }
/** Rows of x Q4_Kx8's and Q6_Kx8's rows kernels serve (kQ4KRows8TilesFrom has the measurements). */
constexpr int64_t kQ4KRows8Rows = 64, kQ6KRows8Rows = 64;

/**
 * Rows of x up to which quantLinear takes the integer path: further where quant_rows_avx512.cc serves
 * the format; none for NF4, whose 16 levels are not integers (quant_blocks.h qIntegerCodes), so no
 * integer product over quantized activations exists for it: its every M takes the tiles + GEMM.
 */
int64_t dotRowsLimit(QFmt f, DotFn kernel) {
  if (!qIntegerCodes(f)) return 0;
#if defined(__x86_64__)
  if (kernel == quantDotVnni && f == QFmt::Q4_Kx8) return kQ4KRows8Rows;
  if (kernel == quantDotVnni && f == QFmt::Q6_Kx8) return kQ6KRows8Rows;
  if (kernel == quantDotVnni && ((quantRowsAvx512Handles(f) && rowsTo32Format(f)) || qRows8(f))) return kQuantRowsAvx512Rows;
#endif
  // The interleaved formats' rows are not one span each: no other integer kernel reads them (the tiles + GEMM do).
  if (qRows8(f)) return 0;
  (void)kernel;
  return kQuantDotRows;
}

#if defined(__x86_64__) || defined(__aarch64__)
/**
 * Rows of x from which quantLinear takes the integer tiles at inference (quant_tiles_int8.cc): 12
 * for the formats quant_rows_avx512.cc takes several rows of (Q8_0, Q4_0, Q5_0 with AVX512-VNNI),
 * 8 for the rest, whose rows path is the portable body. One thread, the AMD EPYC, W cold, SmolLM2's
 * and Qwen2.5-0.5B's matrices (a /tmp build with the tiles from 2 rows alternated with this one):
 * the 512-bit rows kernel won at 8 rows (the tiles 0.70-1.06x) and 9, the tiles at 11 in 14 of 15
 * pairs and at 12 in all (1.01-1.38x; 16 rows 1.26-1.62x) — since their build gathers from W and
 * x is quantized in registers (it had been 17); Q4_1, Q4_K, Q6_K and MLX4's body lost to the tiles
 * in all 6 pairs at 8 rows and won 4 of 6 at 4 (docs/NATIVE.md). The K-quants' 512-bit rows kernel
 * (twenty-fifth session, an Intel Xeon, 7 shapes, W hot) against the tiles at 8 rows: Q4_K
 * 0.90-1.57x, Q5_K 0.91-1.13x, Q6_K 0.56-0.68x, and behind all three at 12: they keep 8. (arm64
 * takes the same 8, not measured on arm64 hardware.)
 */
constexpr int64_t kInt8TilesFromRows512 = 12;
/**
 * Q4_0x8's and Q8_0x8's rows kernel (quant_rows8_avx512.cc) beat or tied the tiles at every row
 * count up to 32 (passes of 8): one thread, an Intel Xeon (Emerald Rapids), W cold, SmolLM2's and
 * Qwen2.5-0.5B's matrices (a /tmp harness forcing each path): Q4_0x8 1.29-1.55x at 12 and 16 rows,
 * 1.02-1.20x at 32 (0.99x once, 192 x 576 at 24); Q8_0x8 1.18-1.64x at 12 and 16, 1.00-1.13x at 32.
 * Q5_0x8's, with its fifth bits to spread, 1.06-1.40x at 12 and 16, 0.93-1.18x at 24 (four of six
 * ahead), 0.93-1.05x at 32 (five of six behind): the tiles take it from 25 rows, the others past 32.
 * Q4_Kx8's (quant_rows8_k_avx512.cc; twenty-eighth session, the same Xeon, W hot) beat its tiles
 * 1.39x and 1.44x at 64 rows (1024x2048, 4864x1024) and ran 0.96x and 1.10x at 256 (its tiles unpack
 * each row's super-block from the interleaved layout, rows8KUnpack: 0.86-0.97x of Q4_K's tiles);
 * against a first, slower build of those tiles 2.4-2.5x at 32 rows over four shapes. It serves up to
 * 64 rows, the tiles past that, where W read once a product counts for matrices the caches do not hold.
 */
constexpr int64_t kRows8TilesFrom = kQuantRowsAvx512Rows + 1, kQ5Rows8TilesFrom = 25, kQ4KRows8TilesFrom = kQ4KRows8Rows + 1,
                  kQ6KRows8TilesFrom = kQ6KRows8Rows + 1;

/**
 * MLX8's rows kernel (twenty-fifth session, the same Xeon, six shapes, W hot) against the tiles:
 * 1.46-1.92x at 8 rows, 1.14-1.43x at 12, 0.86-1.07x at 16, behind at 24; MLX4's 0.98-1.22x at 8
 * and behind at 12, so it keeps 8.
 */
constexpr int64_t kMlx8TilesFromRows512 = 16;
int64_t int8TilesFrom(QFmt f) {
  if (qRows8(f)) {
    return f == QFmt::Q5_0x8 ? kQ5Rows8TilesFrom : f == QFmt::Q4_Kx8 ? kQ4KRows8TilesFrom : f == QFmt::Q6_Kx8 ? kQ6KRows8TilesFrom : kRows8TilesFrom;
  }
  if (!quantRowsAvx512Handles(f)) return 8;
  // Q4_1's and Q5_1's groups of four among them: 1.23-1.66x the tiles at 8 rows in 4 of 5 shapes,
  // about even at 12 (twenty-fifth session, the Xeon, W hot).
  if (groupRowsFormat(f)) return kInt8TilesFromRows512;
  return f == QFmt::Mlx8 || f == QFmt::Mlx8F16 ? kMlx8TilesFromRows512 : 8;
}

/** The integer kernel whose ISA the integer tiles need: AVX512-VNNI's on x86-64, DotProd's on arm64. */
DotFn int8TilesKernel() {
#if defined(__x86_64__)
  return quantDotVnni;
#else
  return quantDotNeonDot;
#endif
}
#endif

/** Weight bytes a thread takes at least before a product over a few rows of x forks (~64 KB). */
constexpr int64_t kRowsGrainBytes = 65536;

#if defined(__x86_64__)
/**
 * y [M, N] = x̂·Wᵀ (+ bias) for W in an interleaved format (quant_rows8.h), up to 8 rows of x a pass
 * over W, its groups of eight rows split over the threads. x's side besides its codes and scales:
 * the starts of Q4_0x8's, Q8_0x8's and Q5_0x8's sums; Q4_Kx8's codes in pairs of blocks and the
 * terms its mins meet; Q6_Kx8's codes in its lanes' order and their sums' starts.
 */
void rows8Product(QFmt f, ActivationRows& x, int64_t N, const uint8_t* w, const float* bias, float* y) {
  const int64_t M = x.M(), K = x.K();
  if (N % kRows8 != 0) throwRange(std::string("quantLinear: a ") + qtraits(f).name + " weight of " + std::to_string(N) + " rows is not whole groups of " + std::to_string(kRows8));
  const int8_t* codes = f == QFmt::Q4_Kx8 ? x.kPairs() : f == QFmt::Q6_Kx8 ? x.q6Lanes() : x.codes();
  const float* scales = x.scales();
  const float* minTerms = f == QFmt::Q4_Kx8 ? x.kMinTerms() : nullptr;
  const int64_t* starts = f == QFmt::Q4_Kx8 ? nullptr : f == QFmt::Q6_Kx8 ? x.q6Starts() : x.starts(f == QFmt::Q8_0x8 ? 128 : f == QFmt::Q5_0x8 ? 16 : 8);
  const int64_t grain = std::max<int64_t>(1, kRowsGrainBytes / (kRows8 * qRowBytes(f, K)));
  for (int64_t m0 = 0; m0 < M; m0 += kQuantDotChunk) {
    const int rows = static_cast<int>(std::min(kQuantDotChunk, M - m0));
    const int64_t blocks0 = m0 * K / 32;
    parallelRange(N / kRows8, grain, [&](int64_t lo, int64_t hi) {
      if (f == QFmt::Q4_Kx8) quantRows8KAvx512(codes + m0 * K, scales + blocks0, minTerms + blocks0, rows, w, K, bias, y + m0 * N, N, lo, hi);
      else if (f == QFmt::Q6_Kx8) quantRows8Q6KAvx512(codes + m0 * K, scales + blocks0, starts + blocks0, rows, w, K, bias, y + m0 * N, N, lo, hi);
      else quantRows8Avx512(f, codes + m0 * K, scales + blocks0, starts + blocks0, rows, w, K, bias, y + m0 * N, N, lo, hi);
    });
  }
}
#endif

/** Rows of W a dequantized tile holds: kQuantTileRows, fewer when N is smaller. */
int64_t tileRows(int64_t N) { return std::min<int64_t>(N, kQuantTileRows); }

/** Rows [n0, n0 + rows) of W into `tile` as float32, the rows split over the threads. */
void dequantizeTile(QFmt f, const uint8_t* w, int64_t K, int64_t n0, int64_t rows, float* tile) {
  parallelRange(rows, std::max<int64_t>(1, 16384 / K), [&](int64_t lo, int64_t hi) {
    dequantizeRows(f, w, K, n0 + lo, hi - lo, tile + lo * K);
  });
}

thread_local std::vector<float> t_tile;

float* tileScratch(int64_t n) {
  if (static_cast<int64_t>(t_tile.size()) < n) t_tile.resize(static_cast<size_t>(n));
  return t_tile.data();
}

/**
 * GEMM FLOPs per thread before the tiles split over the threads: bench:threads forked a float32
 * GEMM to a second thread at a gain from 1.6 MFLOP ([8,784]@[784,128]: 1.39×) on the AMD EPYC.
 */
constexpr int64_t kTileGrainFlops = 2'000'000;

/** y's columns [n0, n0 + rows) = x · W[n0 : n0 + rows]ᵀ (+ bias): the rows dequantized into this thread's tile, one GEMM. */
void tileProduct(QFmt f, const uint8_t* w, const float* x, int64_t M, int64_t N, int64_t K, int64_t n0, int64_t rows, float* y, const float* bias) {
  float* tile = tileScratch(rows * K);
  dequantizeRows(f, w, K, n0, rows, tile);
  Gemm g;
  g.transB = true;
  g.M = M;
  g.N = rows;
  g.K = K;
  g.A = x;
  g.lda = K;
  g.B = tile;
  g.ldb = K;
  g.C = y + n0;
  g.ldc = N;
  g.bias = bias ? bias + n0 : nullptr;
  sgemm(g);
}

}  // namespace

// exact (a training step) takes the tiles + GEMM at every M: the product of x itself, not of x
// quantized, so gradients are the float ones. bf16 (a bf16 step) makes the tiles' product
// autocast's: bf16 operands, the bf16 GEMM.
void quantLinearProduct(QFmt f, const uint8_t* w, const float* x, int64_t M, int64_t N, int64_t K, const float* bias, float* y, bool exact,
                        bool bf16) {
  // A few rows (a decode step's) reuse the calling thread's scratch from call to call (the addon's
  // calls come one at a time from the JavaScript thread); a prefill's is freed with the call, as before.
  thread_local ActivationRows decodeRows;
  ActivationRows prefillRows;
  ActivationRows& rows = M <= kQuantDotChunk ? decodeRows : prefillRows;
  rows.reset(x, M, K);
  quantLinearProduct(f, w, rows, N, bias, y, exact, bf16);
}

void quantLinearProduct(QFmt f, const uint8_t* w, ActivationRows& rows, int64_t N, const float* bias, float* y, bool exact, bool bf16) {
  const float* x = rows.x();
  const int64_t M = rows.M(), K = rows.K();
  const QuantPath path = exact ? QuantPath::Gemm : g_path.load(std::memory_order_relaxed);
  // F16 at a few rows of x (decode): each weight widened where it is read (linear_widened.cc), W read
  // once at 2 bytes a weight; the product of x itself, as the tiles' is (never under a bf16 or exact step).
  if (f == QFmt::F16 && path == QuantPath::Auto && !bf16 && M <= kWidenedThinRows && reinterpret_cast<uintptr_t>(w) % 2 == 0) {
    f16WidenedThin(x, M, reinterpret_cast<const uint16_t*>(w), K, bias, y, N);
    g_lastImpl.store("f16-widened", std::memory_order_relaxed);
    return;
  }
  const char* name = "generic";
  const DotFn kernel = dotKernel(&name);
#if defined(__x86_64__) || defined(__aarch64__)
  // Many rows at inference (a prefill; not an exact or bf16 step, not a forced path): x quantized as
  // at decode, integer GEMMs over W's rows repacked into tiles (quant_tiles_int8.cc).
  if (path == QuantPath::Auto && !bf16 && kernel == int8TilesKernel() && quantTilesInt8Handles(f) && M >= int8TilesFrom(f)) {
    quantTilesInt8(f, rows.codes(), rows.scales(), rows.halfSums(), M, w, N, K, bias, y);
    g_lastImpl.store("int8-tiles", std::memory_order_relaxed);
    return;
  }
#endif
  // setQuantPath("dot") forces the integer path only where the format has one (not NF4 or F16: they fall to the tiles).
  const bool integerPath = path == QuantPath::Dot ? dotRowsLimit(f, kernel) > 0 : path == QuantPath::Auto && M <= dotRowsLimit(f, kernel);
#if defined(__x86_64__)
  if (integerPath && qRows8(f)) {
    rows8Product(f, rows, N, w, bias, y);
    g_lastImpl.store(name, std::memory_order_relaxed);
    return;
  }
#endif
  if (integerPath) {
    // Quantize x's rows once (K is whole blocks of ≥ 32), then every row of W meets them all, up to
    // kQuantDotChunk rows of x at a time (more rows: W is read again per chunk of rows).
    const int8_t* codes = rows.codes();
    const float *scales = rows.scales(), *halfSums = rows.halfSums();
    const int64_t grain = std::max<int64_t>(4, kRowsGrainBytes / std::max<int64_t>(1, qRowBytes(f, K)));
#if defined(__x86_64__)
    if (kernel == quantDotVnni && (M == 1 ? quantRow1Avx512Handles(f) : quantRowsAvx512Handles(f))) {
      // The caller's scratch, named by a plain reference: a thread_local named in the lambda would be each worker's own.
      thread_local std::vector<QuantRow1X> scratch;
      std::vector<QuantRow1X>& xs = scratch;
      if (static_cast<int64_t>(xs.size()) < M) xs.resize(static_cast<size_t>(M));
      for (int64_t m = 0; m < M; m++) prepareRow1Avx512(f, codes + m * K, scales + m * K / 32, K, xs[static_cast<size_t>(m)]);
      if (M == 1) {
        parallelRange(N, grain, [&](int64_t lo, int64_t hi) { quantRow1Avx512(f, xs[0], w, K, bias, y, lo, hi); });
      } else {
        for (int64_t m0 = 0; m0 < M; m0 += kQuantDotChunk) {
          const int rows = static_cast<int>(std::min(kQuantDotChunk, M - m0));
          parallelRange(N, grain, [&](int64_t lo, int64_t hi) { quantRowsAvx512(f, xs.data() + m0, rows, w, K, bias, y + m0 * N, N, lo, hi); });
        }
      }
      g_lastImpl.store(name, std::memory_order_relaxed);
      return;
    }
#endif
    for (int64_t m0 = 0; m0 < M; m0 += kQuantDotChunk) {
      QuantDot t;
      t.fmt = f;
      t.M = std::min(kQuantDotChunk, M - m0);
      t.N = N;
      t.K = K;
      t.W = w;
      t.xq = codes + m0 * K;
      t.xd = scales + m0 * K / 32;
      t.xs = halfSums + m0 * K / 16;
      t.bias = bias;
      t.y = y + m0 * N;
      parallelRange(N, grain, [&](int64_t lo, int64_t hi) { kernel(t, lo, hi); });
    }
    g_lastImpl.store(name, std::memory_order_relaxed);
    return;
  }
  g_lastImpl.store(bf16 ? "dequant+gemm-bf16" : "dequant+gemm", std::memory_order_relaxed);
  if (bf16) {
    quantLinearBf16(f, w, x, M, N, K, y, bias);
    return;
  }
  // Whole tiles to each thread: it dequantizes its tile into its own scratch and multiplies it on
  // one thread (a tile's GEMM, 2·M·T·K FLOPs, was mostly below what makes a GEMM fork, so the tiles ran
  // on one thread), and y's bits no longer depend on the thread count.
  const int64_t T = tileRows(N), tiles = (N + T - 1) / T;
  parallelRange(tiles, std::max<int64_t>(1, kTileGrainFlops / (2 * M * T * K)), [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; t++) tileProduct(f, w, x, M, N, K, t * T, std::min(T, N - t * T), y, bias);
  });
}

namespace {

// quantLinear(format, w, x, M, N, K, y, bias|null, exact?, bf16?): quantLinearProduct's arguments checked.
napi_value QuantLinearKernel(Args& a) {
  const QFmt f = formatArg(a, 0);
  const int64_t M = a.integer(3, "M", 1), N = a.integer(4, "N", 1), K = a.integer(5, "K", 1);
  const U8 w = weightArg(a, 1, f, N, K);
  const F32 x = a.f32(2, "x"), y = a.f32(6, "y");
  const F32 bias = a.argCount() > 7 ? a.f32OrNull(7, "bias") : F32{};
  a.need(x, M * K, "x");
  a.need(y, M * N, "y");
  if (bias.p) a.need(bias, N, "bias");
  const bool exact = a.argCount() > 8 && a.flag(8);
  const bool bf16 = a.argCount() > 9 && a.flag(9);
  quantLinearProduct(f, w.p, x.p, M, N, K, bias.p, y.p, exact, bf16);
  return undefinedValue(a.env());
}

// quantLinearInputGrad(format, w, gy, M, N, K, gx, bf16?): gx [M, K] += gy [M, N] · W [N, K]
napi_value QuantLinearInputGradKernel(Args& a) {
  const QFmt f = formatArg(a, 0);
  const int64_t M = a.integer(3, "M", 1), N = a.integer(4, "N", 1), K = a.integer(5, "K", 1);
  const U8 w = weightArg(a, 1, f, N, K);
  const F32 gy = a.f32(2, "gy"), gx = a.f32(6, "gx");
  a.need(gy, M * N, "gy");
  a.need(gx, M * K, "gx");
  if (a.argCount() > 7 && a.flag(7)) {
    quantLinearInputGradBf16(f, w.p, gy.p, M, N, K, gx.p);
    return undefinedValue(a.env());
  }
  const int64_t T = tileRows(N);
  float* tile = tileScratch(T * K);
  for (int64_t n0 = 0; n0 < N; n0 += T) {
    const int64_t rows = std::min(T, N - n0);
    dequantizeTile(f, w.p, K, n0, rows, tile);
    Gemm g;
    g.M = M;
    g.N = K;
    g.K = rows;
    g.A = gy.p + n0;
    g.lda = N;
    g.B = tile;
    g.ldb = K;
    g.C = gx.p;
    g.ldc = K;
    g.beta = 1;
    sgemm(g);
  }
  return undefinedValue(a.env());
}

// quantDequantize(format, w, K, row0, rows, out)
napi_value QuantDequantizeKernel(Args& a) {
  const QFmt f = formatArg(a, 0);
  const int64_t K = a.integer(2, "K", 1), row0 = a.integer(3, "row0"), rows = a.integer(4, "rows");
  const U8 w = weightArg(a, 1, f, row0 + rows, K);
  const F32 out = a.f32(5, "out");
  a.need(out, rows * K, "out");
  dequantizeTile(f, w.p, K, row0, rows, out.p);
  return undefinedValue(a.env());
}

// quantEmbedding(format, w, ids, K, out)
napi_value QuantEmbeddingKernel(Args& a) {
  const QFmt f = formatArg(a, 0);
  const int64_t K = a.integer(3, "K", 1);
  const U8 w = a.u8(1, "w");
  const I32 ids = a.i32(2, "ids");
  const F32 out = a.f32(4, "out");
  // (An interleaved format: only whole groups of eight rows, each read from its group.)
  const int64_t rows = qRows8(f) ? w.n / (kRows8 * rowBytes(a, f, K)) * kRows8 : w.n / rowBytes(a, f, K);
  a.need(out, ids.n * K, "out");
  for (int64_t i = 0; i < ids.n; i++)
    if (ids.p[i] < 0 || ids.p[i] >= rows)
      throwRange(std::string("embedding: token id ") + std::to_string(ids.p[i]) + " at position " + std::to_string(i) +
                 " is outside the table's " + std::to_string(rows) + " rows");
  parallelRange(ids.n, std::max<int64_t>(1, 16384 / K), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) dequantizeRows(f, w.p, K, ids.p[i], 1, out.p + i * K);
  });
  return undefinedValue(a.env());
}

// quantRepack(format, w, N, K): a Q4_0, Q8_0, Q5_0, Q4_K or Q6_K matrix's rows interleaved in place into
// Q4_0x8, Q8_0x8, Q5_0x8, Q4_Kx8 or Q6_Kx8 where this CPU's products read them (quant_rows8.h) and N is whole groups of eight; the
// format w holds after (its index), or -1 when it was left as it was.
napi_value QuantRepackKernel(Args& a) {
  const QFmt f = formatArg(a, 0);
  const int64_t N = a.integer(2, "N", 1), K = a.integer(3, "K", 1);
  const U8 w = weightArg(a, 1, f, N, K);
  const QFmt to = qRows8Format(f);
  if (to == QFmt::Count || N % kRows8 != 0 || !rows8Products()) return numberValue(a.env(), -1);
  repackRows8(f, w.p, N, K);
  return numberValue(a.env(), static_cast<double>(to));
}

// setQuantPath("auto" | "dot" | "gemm")
napi_value SetQuantPath(Args& a) {
  const std::string p = a.str(0, "path");
  if (p == "auto") g_path.store(QuantPath::Auto);
  else if (p == "dot") g_path.store(QuantPath::Dot);
  else if (p == "gemm") g_path.store(QuantPath::Gemm);
  else throwRange("setQuantPath: expected \"auto\", \"dot\" or \"gemm\", got \"" + p + "\"");
  return undefinedValue(a.env());
}

// quantizeActivations(x, M, K, q, d, s): x's M rows quantized per block of 32 as every integer product
// quantizes them (q: the int8 codes' bytes, d a scale a block, s d·Σq a half block): tests.
napi_value QuantizeActivationsKernel(Args& a) {
  const int64_t M = a.integer(1, "M", 1), K = a.integer(2, "K", 1);
  if (K % 32 != 0) throwRange("quantizeActivations: K " + std::to_string(K) + " is not whole blocks of 32");
  const F32 x = a.f32(0, "x"), d = a.f32(4, "d"), s = a.f32(5, "s");
  const U8 q = a.u8(3, "q");
  a.need(x, M * K, "x");
  a.need(q, M * K, "q");
  a.need(d, M * K / 32, "d");
  a.need(s, M * K / 16, "s");
  quantizeActivations(x.p, M, K, reinterpret_cast<int8_t*>(q.p), d.p, s.p);
  return undefinedValue(a.env());
}

napi_value LastQuantImpl(Args& a) { return stringValue(a.env(), g_lastImpl.load(std::memory_order_relaxed)); }

}  // namespace

void registerQuant(napi_env env, napi_value exports) {
  defineFunction(env, exports, "quantLinear", entry<QuantLinearKernel>);
  defineFunction(env, exports, "quantLinearInputGrad", entry<QuantLinearInputGradKernel>);
  defineFunction(env, exports, "quantDequantize", entry<QuantDequantizeKernel>);
  defineFunction(env, exports, "quantEmbedding", entry<QuantEmbeddingKernel>);
  defineFunction(env, exports, "quantRepack", entry<QuantRepackKernel>);
  defineFunction(env, exports, "lastQuantImpl", entry<LastQuantImpl>);
  defineFunction(env, exports, "quantizeActivations", entry<QuantizeActivationsKernel>);
  defineFunction(env, exports, "setQuantPath", entry<SetQuantPath>);
}

}  // namespace sc
