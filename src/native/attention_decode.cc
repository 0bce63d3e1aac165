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
 * scoreRow with vdpbf16ps: q (bf16 [d]) against keys four at a time, their sums folded together.
 * Each lane sums its pairs of exact bf16 products in float32 (the instruction's order, not c's).
 */
__attribute__((target("avx512f,avx512bw,avx512bf16,avx2,fma")))
void scoreRowBf16(const uint16_t* q, const uint16_t* k, float* scores, int64_t keys, int64_t d, float scale) {
  const int64_t full = d - d % 32;
  const __mmask32 tail = static_cast<__mmask32>((uint64_t{1} << (d % 32)) - 1);
  int64_t j = 0;
  for (; j + 4 <= keys; j += 4) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t c = 0; c < d; c += 32) {
      const __m512bh qv = loadPairs(q, c, full, tail);
      for (int r = 0; r < 4; r++) acc[r] = _mm512_dpbf16_ps(acc[r], qv, loadPairs(k + (j + r) * d, c, full, tail));
    }
    _mm_storeu_ps(scores + j, _mm_mul_ps(_mm_set1_ps(scale), sum4(acc[0], acc[1], acc[2], acc[3])));
  }
  for (; j < keys; j++) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t c = 0; c < d; c += 32) acc = _mm512_dpbf16_ps(acc, loadPairs(q, c, full, tail), loadPairs(k + j * d, c, full, tail));
    alignas(16) float s[4];
    _mm_store_ps(s, sum4(acc, _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()));
    scores[j] = scale * s[0];
  }
}

/** scoreRowBf16 for a float32 cache: q·k with fused multiply-adds, 16 lanes, keys four at a time. */
__attribute__((target("avx512f,avx2,fma")))
void scoreRowF32(const float* q, const float* k, float* scores, int64_t keys, int64_t d, float scale) {
  const int64_t full = d - d % 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (d % 16)) - 1);
  int64_t j = 0;
  for (; j + 4 <= keys; j += 4) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t c = 0; c < d; c += 16) {
      const __mmask16 m = c < full ? static_cast<__mmask16>(0xFFFF) : tail;
      const __m512 qv = _mm512_maskz_loadu_ps(m, q + c);
      for (int r = 0; r < 4; r++) acc[r] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k + (j + r) * d + c), acc[r]);
    }
    _mm_storeu_ps(scores + j, _mm_mul_ps(_mm_set1_ps(scale), sum4(acc[0], acc[1], acc[2], acc[3])));
  }
  for (; j < keys; j++) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t c = 0; c < d; c += 16) {
      const __mmask16 m = c < full ? static_cast<__mmask16>(0xFFFF) : tail;
      acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + c), _mm512_maskz_loadu_ps(m, k + j * d + c), acc);
    }
    alignas(16) float s[4];
    _mm_store_ps(s, sum4(acc, _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()));
    scores[j] = scale * s[0];
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
 * weightedRow 16 lanes at a time, 64 columns of out per pass over the keys (four independent sums;
 * each column's order is j ascending, as the portable loop's).
 */
template <class T>
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
void weightedRowAvx512(const float* p, const T* v, float* out, int64_t keys, int64_t dv) {
  for (int64_t c0 = 0; c0 < dv; c0 += 64) {
    __mmask16 lanes[4];
    for (int u = 0; u < 4; u++) {
      const int64_t left = dv - c0 - 16 * u;
      lanes[u] = static_cast<__mmask16>(left >= 16 ? 0xFFFF : left > 0 ? (1u << left) - 1 : 0);
    }
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t j = 0; j < keys; j++) {
      const __m512 pj = _mm512_set1_ps(p[j]);
      const T* vj = v + j * dv + c0;
      for (int u = 0; u < 4; u++) acc[u] = _mm512_fmadd_ps(pj, lanes16(vj + 16 * u, lanes[u]), acc[u]);
    }
    for (int u = 0; u < 4; u++) _mm512_mask_storeu_ps(out + c0 + 16 * u, lanes[u], acc[u]);
  }
}
#endif

/** Scratch one call reuses for every query head: the head's query (rounded to bf16 for a bf16 cache) and its scores. */
struct Scratch {
  std::unique_ptr<uint16_t[]> q;
  std::unique_ptr<float[]> qf, scores;
  explicit Scratch(const AttentionGeometry& g)
      : q(new uint16_t[static_cast<size_t>(std::max<int64_t>(g.d, 1))]),
        qf(new float[static_cast<size_t>(std::max<int64_t>(g.d, 1))]),
        scores(new float[static_cast<size_t>(std::max<int64_t>(g.tk, 1))]) {}
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

/** One query head against its slice: scores, the softmax, the weighted sum (AVX-512 where the CPU has it). */
void attendHead(const AttentionGeometry& g, const float* q, const float* k, const float* v, float* out, Scratch& m) {
#if SC_HAVE_DECODE_AVX512
  if (cpuFeatures().avx512) {
    scoreRowF32(q, k, m.scores.get(), g.tk, g.d, g.scale);
    softmaxRow(m.scores.get(), g.tk, false);
    return weightedRowAvx512(m.scores.get(), v, out, g.tk, g.dv);
  }
#elif defined(__aarch64__)
  if (cpuFeatures().neon) {
    scoreRowNeon(q, k, m.scores.get(), g.tk, g.d, g.scale);
    softmaxRow(m.scores.get(), g.tk, false);
    return weightedRowNeon(m.scores.get(), v, out, g.tk, g.dv);
  }
#endif
  scoreRow(q, k, m.scores.get(), g.tk, g.d, g.scale);
  softmaxRow(m.scores.get(), g.tk, false);
  weightedRow(m.scores.get(), v, out, g.tk, g.dv);
}

void attendHead(const AttentionGeometry& g, const float* q, const uint16_t* k, const uint16_t* v, float* out, Scratch& m) {
  toBf16(q, m.q.get(), g.d);
#if SC_HAVE_DECODE_AVX512
  if (cpuFeatures().avx512bf16) {
    scoreRowBf16(m.q.get(), k, m.scores.get(), g.tk, g.d, g.scale);
    softmaxRow(m.scores.get(), g.tk, true);
    return weightedRowAvx512(m.scores.get(), v, out, g.tk, g.dv);
  }
#endif
  for (int64_t c = 0; c < g.d; c++) m.qf[c] = widenBf16(m.q[c]);
#if defined(__aarch64__)
  if (cpuFeatures().neon) {
    if (cpuFeatures().bf16) scoreRowBfdot(m.q.get(), k, m.scores.get(), g.tk, g.d, g.scale);
    else scoreRowNeon(m.qf.get(), k, m.scores.get(), g.tk, g.d, g.scale);
    softmaxRow(m.scores.get(), g.tk, true);
    return weightedRowNeon(m.scores.get(), v, out, g.tk, g.dv);
  }
#endif
  scoreRow(m.qf.get(), k, m.scores.get(), g.tk, g.d, g.scale);
  softmaxRow(m.scores.get(), g.tk, true);
  weightedRow(m.scores.get(), v, out, g.tk, g.dv);
}

/** Stores kv slice s's new position (tk − 1), then attends its query heads [s · groups, (s + 1) · groups). */
template <class T>
void attendSlice(const AttentionGeometry& g, int64_t s, const Operands<T>& o, Scratch& m) {
  const T* k = o.k + s * g.cap * g.d;
  const T* v = o.v + s * g.cap * g.dv;
  storeValues(o.kNew + s * g.d, o.k + (s * g.cap + g.tk - 1) * g.d, g.d);
  storeValues(o.vNew + s * g.dv, o.v + (s * g.cap + g.tk - 1) * g.dv, g.dv);
  for (int64_t b = s * g.groups; b < (s + 1) * g.groups; b++) attendHead(g, o.q + b * g.d, k, v, o.out + b * g.dv, m);
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
