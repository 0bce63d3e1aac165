// A decode step's attention over a KV cache, one call per sequence: one query position per head,
// every head of the sequence. The call stores the new position's k and v into the cache's [Hkv,
// capacity, d] storage and reads the cache in place (kvCapacity) over positions [0, tk); grouped
// query heads share their kv head's keys and values, never repeated.
//
// Two caches: float32 (a float32 generation: attention.cc's arithmetic, scores = scale · q·k, a
// softmax, out = Σ p_j v_j) and bf16 (a bf16 generation: the bf16 attention op's arithmetic, as
// attention_bf16.cc at tq = 1: q rounded to bf16 and k, v held so (bf16Bits: nearest even), exact
// float32 products of bf16 values, p rounded to bf16 before the product with v). Only the order of
// the sums differs from those kernels' (a float32 rounding apart).
//
// Under bf16 autocast a decode step used to run the attention op once per row and kv head over a
// float32 cache: each call cast its query and the kv head's whole cached prefix to bf16 and ran two
// oneDNN products of one row (SmolLM2-135M at batch 8: 720 op calls and ~20 MB of casts a step, a
// third of the step). A float32 step stored k and v per row (two strided copies) and ran the fused
// kernel's thin path, one query head at a time, each key's dot product summed across its lanes.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>

#include "attention_decode.h"
#include "attention_decode_neon.h"
#include "attention_geometry.h"
#include "bf16.h"
#include "cpu_features.h"
#include "napi_args.h"
#include "registry.h"
#include "simd.h"
#include "softmax_row.h"

#if defined(__x86_64__) && defined(__linux__) && \
    ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10) || (defined(__clang__) && __clang_major__ >= 9))
#define SC_HAVE_DECODE_AVX512 1
#include <immintrin.h>

#include "lane_sums.h"
#else
#define SC_HAVE_DECODE_AVX512 0
#endif

namespace sc {
namespace {

inline float valueOf(float x) { return x; }
inline float valueOf(uint16_t h) { return widenBf16(h); }

/** scores[j] = scale · q·k_j over the first `keys` rows of k (q's values float32, k's float32 or bf16). */
template <class T>
void scoreRow(const float* SC_RESTRICT q, const T* SC_RESTRICT k, float* SC_RESTRICT scores, int64_t keys, int64_t d,
              float scale) {
  for (int64_t j = 0; j < keys; j++) {
    const T* kj = k + j * d;
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < d; c++) dot += q[c] * valueOf(kj[c]);
    scores[j] = scale * dot;
  }
}

/** Scores → probabilities; `rounded`: to bf16 (as attention_bf16.cc saves and multiplies them). */
void softmaxRow(float* s, int64_t keys, bool rounded) {
  const double sum = expShiftedSumInPlace(s, keys, rowMax(s, keys));
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t j = 0; j < keys; j++) {
    const float f = s[j] * inv;
    s[j] = rounded ? widenBf16(bf16Of(f)) : f;
  }
}

/** out = Σ_j p_j v_j over the first `keys` rows of v. */
template <class T>
void weightedRow(const float* SC_RESTRICT p, const T* SC_RESTRICT v, float* SC_RESTRICT out, int64_t keys, int64_t dv) {
  for (int64_t c = 0; c < dv; c++) out[c] = 0.0f;
  for (int64_t j = 0; j < keys; j++) {
    const float pj = p[j];
    const T* vj = v + j * dv;
#pragma omp simd
    for (int64_t c = 0; c < dv; c++) out[c] += pj * valueOf(vj[c]);
  }
}

#if SC_HAVE_DECODE_AVX512
/** 32 bf16 of p from c, the lanes past `full` masked by `tail` (d's last partial block). */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
inline __m512bh loadPairs(const uint16_t* p, int64_t c, int64_t full, __mmask32 tail) {
  return reinterpret_cast<__m512bh>(c < full ? _mm512_loadu_si512(p + c) : _mm512_maskz_loadu_epi16(tail, p + c));
}

/**
 * How far ahead of the rows they read the grouped kernels ask for rows of k and v, and into which
 * cache: a step's cache is past the L2 (the weights streamed through it since the last step), and
 * each kv head's k and v are short streams (SmolLM2-135M at 96 positions: 24 KB each, six a layer)
 * that the hardware's prefetchers leave at ~15-17 GB/s.
 *  - Intel, 8 rows into the L1: an Intel Xeon (Emerald Rapids), SmolLM2-135M's 30 layers, 512
 *    positions, 1.15x with 8 rows ahead, 1.08x with 4, 1.15x with 16; 96 positions 1.05x.
 *  - AMD, 24 rows into the L2 (_MM_HINT_T1; Zen 4 fills only the L2 for T1 and T2 alike): the AMD
 *    EPYC (Zen 4), the 30 layers' calls at 96 positions after 96 MB read: 386-433 µs without,
 *    294-333 with (16 rows 336-366, 32 rows 303-335; 8 rows into the L1 375-423: each line asked
 *    for there holds one of the L1's few miss buffers); in a SmolLM2-135M Q4_0 decode, generations
 *    alternated in one process, 3.03 -> 3.00 ms a token at 32-160 positions and 4.74 -> 4.69 at
 *    480-608.
 * Rows past the last key are not asked for: the cache's capacity past it is never read.
 * On AMD (`beside`) the kernels also ask for the stream a kv head reads next, row by row in step with
 * the rows they read (v's while scoring k, the next kv head's k while summing v): each short stream
 * but a call's first is then on its way before it is read, two at a time. SmolLM2-135M's Q4_0 file
 * (32-160 positions, one thread, the AMD EPYC, generations alternated in one process, the decode
 * block's parts timed inside it): the attention's time a token 0.85-0.87x in a float32 step, 0.82x
 * in a bf16 one, the token's 0.99x; Qwen2.5-0.5B's (two kv heads, a smaller part) level.
 */
struct Lookahead {
  int64_t rows;
  bool toL2;
  bool beside;
};

Lookahead lookaheadOfThisCpu() { return cpuIsIntel() ? Lookahead{8, false, false} : Lookahead{24, true, true}; }

/** Asks for the cache line at p (a prefetch never faults). */
inline void prefetchLine(const void* p, bool toL2) {
  if (toL2) _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1);
  else _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
}

/**
 * scoreRow with vdpbf16ps for H query heads of one kv head (q: H rows of d bf16; scores: H rows,
 * `stride` apart) in one pass over k: keys four at a time, each head's four sums folded together.
 * Each lane sums its pairs of exact bf16 products in float32 (the instruction's order, not c's).
 */
template <int H>
__attribute__((target("avx512f,avx512bw,avx512bf16,avx2,fma")))
void scoreRowsBf16(const uint16_t* q, const uint16_t* k, float* scores, int64_t stride, int64_t keys, int64_t d, float scale, Lookahead ahead, const uint16_t* beside) {
  const int64_t full = d - d % 32;
  const __mmask32 tail = static_cast<__mmask32>((uint64_t{1} << (d % 32)) - 1);
  int64_t j = 0;
  for (; j + 4 <= keys; j += 4) {
    __m512 acc[H][4];
    for (int h = 0; h < H; h++)
      for (int r = 0; r < 4; r++) acc[h][r] = _mm512_setzero_ps();
    for (int64_t c = 0; c < d; c += 32) {
      __m512bh kv[4];
      for (int r = 0; r < 4 && j + r + ahead.rows < keys; r++) prefetchLine(k + (j + r + ahead.rows) * d + c, ahead.toL2);
      if (beside)
        for (int r = 0; r < 4; r++) prefetchLine(beside + (j + r) * d + c, ahead.toL2);
      for (int r = 0; r < 4; r++) kv[r] = loadPairs(k + (j + r) * d, c, full, tail);
      for (int h = 0; h < H; h++) {
        const __m512bh qv = loadPairs(q + h * d, c, full, tail);
        for (int r = 0; r < 4; r++) acc[h][r] = _mm512_dpbf16_ps(acc[h][r], qv, kv[r]);
      }
    }
    for (int h = 0; h < H; h++) _mm_storeu_ps(scores + h * stride + j, _mm_mul_ps(_mm_set1_ps(scale), sum4(acc[h][0], acc[h][1], acc[h][2], acc[h][3])));
  }
  for (; j < keys; j++) {
    __m512 acc[H];
    for (int h = 0; h < H; h++) acc[h] = _mm512_setzero_ps();
    for (int64_t c = 0; c < d; c += 32) {
      const __m512bh kv = loadPairs(k + j * d, c, full, tail);
      for (int h = 0; h < H; h++) acc[h] = _mm512_dpbf16_ps(acc[h], loadPairs(q + h * d, c, full, tail), kv);
    }
    for (int h = 0; h < H; h++) scores[h * stride + j] = scale * sum1(acc[h]);
  }
}

/** scoreRowsBf16 for a float32 cache: q·k with fused multiply-adds, 16 lanes, keys four at a time. */
template <int H>
__attribute__((target("avx512f,avx2,fma")))
void scoreRowsF32(const float* q, const float* k, float* scores, int64_t stride, int64_t keys, int64_t d, float scale, Lookahead ahead, const float* beside) {
  const int64_t full = d - d % 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (d % 16)) - 1);
  int64_t j = 0;
  for (; j + 4 <= keys; j += 4) {
    __m512 acc[H][4];
    for (int h = 0; h < H; h++)
      for (int r = 0; r < 4; r++) acc[h][r] = _mm512_setzero_ps();
    for (int64_t c = 0; c < d; c += 16) {
      const __mmask16 m = c < full ? static_cast<__mmask16>(0xFFFF) : tail;
      __m512 kv[4];
      for (int r = 0; r < 4 && j + r + ahead.rows < keys; r++) prefetchLine(k + (j + r + ahead.rows) * d + c, ahead.toL2);
      if (beside)
        for (int r = 0; r < 4; r++) prefetchLine(beside + (j + r) * d + c, ahead.toL2);
      for (int r = 0; r < 4; r++) kv[r] = _mm512_maskz_loadu_ps(m, k + (j + r) * d + c);
      for (int h = 0; h < H; h++) {
        const __m512 qv = _mm512_maskz_loadu_ps(m, q + h * d + c);
        for (int r = 0; r < 4; r++) acc[h][r] = _mm512_fmadd_ps(qv, kv[r], acc[h][r]);
      }
    }
    for (int h = 0; h < H; h++) _mm_storeu_ps(scores + h * stride + j, _mm_mul_ps(_mm_set1_ps(scale), sum4(acc[h][0], acc[h][1], acc[h][2], acc[h][3])));
  }
  for (; j < keys; j++) {
    __m512 acc[H];
    for (int h = 0; h < H; h++) acc[h] = _mm512_setzero_ps();
    for (int64_t c = 0; c < d; c += 16) {
      const __mmask16 m = c < full ? static_cast<__mmask16>(0xFFFF) : tail;
      const __m512 kv = _mm512_maskz_loadu_ps(m, k + j * d + c);
      for (int h = 0; h < H; h++) acc[h] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + h * d + c), kv, acc[h]);
    }
    for (int h = 0; h < H; h++) scores[h * stride + j] = scale * sum1(acc[h]);
  }
}

/** 16 values of p (the lanes of `lanes`) as float32: loaded, or bf16 widened. */
__attribute__((target("avx512f,avx512bw,avx512vl")))
inline __m512 lanes16(const float* p, __mmask16 lanes) { return _mm512_maskz_loadu_ps(lanes, p); }

__attribute__((target("avx512f,avx512bw,avx512vl")))
inline __m512 lanes16(const uint16_t* p, __mmask16 lanes) {
  const __m256i h = _mm256_maskz_loadu_epi16(lanes, p);
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, _mm512_maskz_cvtepu16_epi32(0xFFFF, h), 16));
}

/**
 * weightedRow for H query heads of one kv head (p: H rows, `stride` apart; out: H rows of dv) in one
 * pass over v: 16 lanes at a time, 64 columns of each head's out per pass over the keys (four
 * independent sums a head; each column's order is j ascending, as the portable loop's).
 */
template <class T, int H>
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
void weightedRowsAvx512(const float* p, int64_t stride, const T* v, float* out, int64_t keys, int64_t dv, Lookahead ahead, const T* beside) {
  for (int64_t c0 = 0; c0 < dv; c0 += 64) {
    __mmask16 lanes[4];
    for (int u = 0; u < 4; u++) {
      const int64_t left = dv - c0 - 16 * u;
      lanes[u] = static_cast<__mmask16>(left >= 16 ? 0xFFFF : left > 0 ? (1u << left) - 1 : 0);
    }
    __m512 acc[H][4];
    for (int h = 0; h < H; h++)
      for (int u = 0; u < 4; u++) acc[h][u] = _mm512_setzero_ps();
    for (int64_t j = 0; j < keys; j++) {
      const T* vj = v + j * dv + c0;
      if (j + ahead.rows < keys)
        for (int u = 0; u < 4; u += 64 / (16 * sizeof(T))) prefetchLine(vj + ahead.rows * dv + 16 * u, ahead.toL2);
      if (beside)
        for (int u = 0; u < 4; u += 64 / (16 * sizeof(T))) prefetchLine(beside + j * dv + c0 + 16 * u, ahead.toL2);
      __m512 vv[4];
      for (int u = 0; u < 4; u++) vv[u] = lanes16(vj + 16 * u, lanes[u]);
      for (int h = 0; h < H; h++) {
        const __m512 pj = _mm512_set1_ps(p[h * stride + j]);
        for (int u = 0; u < 4; u++) acc[h][u] = _mm512_fmadd_ps(pj, vv[u], acc[h][u]);
      }
    }
    for (int h = 0; h < H; h++)
      for (int u = 0; u < 4; u++) _mm512_mask_storeu_ps(out + h * dv + c0 + 16 * u, lanes[u], acc[h][u]);
  }
}

/**
 * f(h, H) for the query heads [0, heads) of one kv head in batches of up to four (H a compile-time
 * count): the grouped kernels above keep 4·H accumulators in registers and read k and v once a batch.
 */
template <class F>
void eachHeadBatch(int64_t heads, F&& f) {
  for (int64_t h = 0; h < heads; h += 4) {
    switch (std::min<int64_t>(4, heads - h)) {
      case 1: f(h, std::integral_constant<int, 1>{}); break;
      case 2: f(h, std::integral_constant<int, 2>{}); break;
      case 3: f(h, std::integral_constant<int, 3>{}); break;
      default: f(h, std::integral_constant<int, 4>{}); break;
    }
  }
}
#endif

/** Scratch one call reuses for every kv head: its query heads' queries (rounded to bf16 for a bf16 cache) and scores, a row a head. */
struct Scratch {
  std::unique_ptr<uint16_t[]> q;
  std::unique_ptr<float[]> qf, scores;
  explicit Scratch(const AttentionGeometry& g)
      : q(new uint16_t[static_cast<size_t>(std::max<int64_t>(g.groups * g.d, 1))]),
        qf(new float[static_cast<size_t>(std::max<int64_t>(g.d, 1))]),
        scores(new float[static_cast<size_t>(std::max<int64_t>(g.groups * g.tk, 1))]) {}
};

/** The call's operands: q, the new position's k and v (float32), the cache (T: float or bf16 bits), out. */
template <class T>
struct Operands {
  const float *q, *kNew, *vNew;
  T *k, *v;
  float* out;
};

/** n values into the cache: copied, or rounded to bf16. */
void storeValues(const float* x, float* into, int64_t n) { std::memcpy(into, x, static_cast<size_t>(n) * 4); }
void storeValues(const float* x, uint16_t* into, int64_t n) { toBf16(x, into, n); }

/** One query head against its slice, its own pass over k and v (NEON where arm64 has it, else the portable loops). */
void attendHeadAlone(const AttentionGeometry& g, const float* q, const float* k, const float* v, float* out, float* scores) {
#if defined(__aarch64__)
  if (cpuFeatures().neon) {
    scoreRowNeon(q, k, scores, g.tk, g.d, g.scale);
    softmaxRow(scores, g.tk, false);
    return weightedRowNeon(scores, v, out, g.tk, g.dv);
  }
#endif
  scoreRow(q, k, scores, g.tk, g.d, g.scale);
  softmaxRow(scores, g.tk, false);
  weightedRow(scores, v, out, g.tk, g.dv);
}

/** The same for a bf16 cache: q already rounded to bf16 (qb), qf its float32 values' scratch. */
void attendHeadAlone(const AttentionGeometry& g, const uint16_t* qb, float* qf, const uint16_t* k, const uint16_t* v, float* out, float* scores) {
  for (int64_t c = 0; c < g.d; c++) qf[c] = widenBf16(qb[c]);
#if defined(__aarch64__)
  if (cpuFeatures().neon) {
    if (cpuFeatures().bf16) scoreRowBfdot(qb, k, scores, g.tk, g.d, g.scale);
    else scoreRowNeon(qf, k, scores, g.tk, g.d, g.scale);
    softmaxRow(scores, g.tk, true);
    return weightedRowNeon(scores, v, out, g.tk, g.dv);
  }
#endif
  scoreRow(qf, k, scores, g.tk, g.d, g.scale);
  softmaxRow(scores, g.tk, true);
  weightedRow(scores, v, out, g.tk, g.dv);
}

/**
 * A kv head's g.groups query heads (q, out: a row each) against its slice: scores, the softmax, the
 * weighted sums. On AVX-512 the heads go in batches of up to four, each batch reading k and v once
 * (a head at a time read them once a head: SmolLM2-135M's three heads a kv head, Qwen2.5-0.5B's
 * seven); every head's sums are in the order a head alone takes, so the bits are the same.
 */
void attendHeads(const AttentionGeometry& g, const float* q, const float* k, const float* v, const float* nextK, float* out, Scratch& m) {
  float* scores = m.scores.get();
#if SC_HAVE_DECODE_AVX512
  if (cpuFeatures().avx512) {
    const Lookahead ahead = lookaheadOfThisCpu();
    return eachHeadBatch(g.groups, [&](int64_t h, auto heads) {
      constexpr int H = decltype(heads)::value;
      const bool beside = h == 0 && ahead.beside && g.d == g.dv;  // a later batch finds k and v in the caches
      scoreRowsF32<H>(q + h * g.d, k, scores, g.tk, g.tk, g.d, g.scale, ahead, beside ? v : nullptr);
      for (int i = 0; i < H; i++) softmaxRow(scores + i * g.tk, g.tk, false);
      weightedRowsAvx512<float, H>(scores, g.tk, v, out + h * g.dv, g.tk, g.dv, ahead, beside ? nextK : nullptr);
    });
  }
#endif
  for (int64_t h = 0; h < g.groups; h++) attendHeadAlone(g, q + h * g.d, k, v, out + h * g.dv, scores);
}

void attendHeads(const AttentionGeometry& g, const float* q, const uint16_t* k, const uint16_t* v, const uint16_t* nextK, float* out, Scratch& m) {
  uint16_t* qb = m.q.get();
  float* scores = m.scores.get();
  toBf16(q, qb, g.groups * g.d);
#if SC_HAVE_DECODE_AVX512
  if (cpuFeatures().avx512bf16) {
    const Lookahead ahead = lookaheadOfThisCpu();
    return eachHeadBatch(g.groups, [&](int64_t h, auto heads) {
      constexpr int H = decltype(heads)::value;
      const bool beside = h == 0 && ahead.beside && g.d == g.dv;
      scoreRowsBf16<H>(qb + h * g.d, k, scores, g.tk, g.tk, g.d, g.scale, ahead, beside ? v : nullptr);
      for (int i = 0; i < H; i++) softmaxRow(scores + i * g.tk, g.tk, true);
      weightedRowsAvx512<uint16_t, H>(scores, g.tk, v, out + h * g.dv, g.tk, g.dv, ahead, beside ? nextK : nullptr);
    });
  }
#endif
  for (int64_t h = 0; h < g.groups; h++) attendHeadAlone(g, qb + h * g.d, m.qf.get(), k, v, out + h * g.dv, scores);
}

/** Stores kv slice s's new position (tk − 1), then attends its query heads [s · groups, (s + 1) · groups). */
template <class T>
void attendSlice(const AttentionGeometry& g, int64_t s, const Operands<T>& o, Scratch& m) {
  const T* k = o.k + s * g.cap * g.d;
  const T* v = o.v + s * g.cap * g.dv;
  storeValues(o.kNew + s * g.d, o.k + (s * g.cap + g.tk - 1) * g.d, g.d);
  storeValues(o.vNew + s * g.dv, o.v + (s * g.cap + g.tk - 1) * g.dv, g.dv);
  const T* nextK = s + 1 < g.kvSlices() ? k + g.cap * g.d : nullptr;
  attendHeads(g, o.q + s * g.groups * g.d, k, v, nextK, o.out + s * g.groups * g.dv, m);
}

template <class T>
void decodeSlices(const AttentionGeometry& g, const float* q, const float* kNew, const float* vNew, T* k, T* v, float* out) {
  if (g.bh == 0) return;
  Scratch scratch(g);
  const Operands<T> o{q, kNew, vNew, k, v, out};
  for (int64_t s = 0; s < g.kvSlices(); s++) attendSlice(g, s, o, scratch);
}

template <class T>
T* cacheArg(Args& a, size_t i, const char* name, int64_t n);

template <>
float* cacheArg<float>(Args& a, size_t i, const char* name, int64_t n) {
  const F32 b = a.f32(i, name);
  a.need(b, n, name);
  return b.p;
}

template <>
uint16_t* cacheArg<uint16_t>(Args& a, size_t i, const char* name, int64_t n) {
  const U16 b = a.u16(i, name);
  a.need(b, n, name);
  return b.p;
}

// attentionDecode{F32,Bf16}(sizes[bh, tq = 1, tk, d, dv, groups, kvCapacity], scale, causal = false,
//                           q (f32 [bh, d]), kNew (f32 [kv, d]), vNew (f32 [kv, dv]),
//                           k ([kv, kvCapacity, d]), v ([kv, kvCapacity, dv]) (f32 or bf16), out (f32 [bh, dv]))
// kv = bh / groups; kNew and vNew are stored at position tk − 1 of the cache, which is then read over [0, tk).
template <class T>
napi_value decodeKernel(Args& a, const char* name) {
  const AttentionGeometry g = attentionGeometry(a, name);
  if (g.tq != 1 || g.causal) throwRange(std::string(name) + ": one query position per head (tq = 1), no causal mask");
  if (g.tk < 1) throwRange(std::string(name) + ": tk counts the new position, so it is at least 1");
  const F32 q = a.f32(3, "q"), kNew = a.f32(4, "kNew"), vNew = a.f32(5, "vNew"), out = a.f32(8, "out");
  const int64_t kv = g.kvSlices();
  a.need(q, g.bh * g.d, "q");
  a.need(kNew, kv * g.d, "kNew");
  a.need(vNew, kv * g.dv, "vNew");
  a.need(out, g.bh * g.dv, "out");
  T* k = cacheArg<T>(a, 6, "k", kv * g.cap * g.d);
  T* v = cacheArg<T>(a, 7, "v", kv * g.cap * g.dv);
  attentionDecode(g, q.p, kNew.p, vNew.p, k, v, out.p);
  return undefinedValue(a.env());
}

}  // namespace

void attentionDecode(const AttentionGeometry& g, const float* q, const float* kNew, const float* vNew, float* k, float* v, float* out) {
  decodeSlices(g, q, kNew, vNew, k, v, out);
}

void attentionDecode(const AttentionGeometry& g, const float* q, const float* kNew, const float* vNew, uint16_t* k, uint16_t* v, float* out) {
  decodeSlices(g, q, kNew, vNew, k, v, out);
}

namespace {

napi_value AttentionDecodeF32Kernel(Args& a) { return decodeKernel<float>(a, "attentionDecodeF32"); }
napi_value AttentionDecodeBf16Kernel(Args& a) { return decodeKernel<uint16_t>(a, "attentionDecodeBf16"); }

}  // namespace

void registerAttentionDecode(napi_env env, napi_value exports) {
  defineFunction(env, exports, "attentionDecodeF32", entry<AttentionDecodeF32Kernel>);
  defineFunction(env, exports, "attentionDecodeBf16", entry<AttentionDecodeBf16Kernel>);
}

}  // namespace sc
