// A bf16 decode step's attention over a bf16 KV cache: one query position per head, every head of
// one sequence in one call. The call stores the new position's k and v (rounded to bf16) into the
// cache's [Hkv, capacity, d] storage and reads the cache in place (kvCapacity), grouped query heads
// sharing their kv head's keys and values.
//
// Under bf16 autocast a decode step used to run the attention op once per row and kv head over a
// float32 cache: each call cast its query and the kv head's whole cached prefix to bf16 and ran two
// oneDNN products of one row (SmolLM2-135M at batch 8: 720 op calls and ~20 MB of casts a step, a
// third of the step). The arithmetic here is that op's (attention_bf16.cc at tq = 1): q, k and v
// rounded to bf16 as its casts round them (bf16Bits: nearest even; the cache holds k and v so
// rounded), scores = scale · q·k over exact float32 products of bf16 values, a float32 softmax, p
// rounded to bf16, out = Σ p_j v_j in float32. Only the order of the two sums differs from
// oneDNN's (a float32 rounding apart).
#include <algorithm>
#include <cstring>
#include <memory>

#include "attention_geometry.h"
#include "bf16.h"
#include "napi_args.h"
#include "registry.h"
#include "simd.h"
#include "softmax_row.h"

#if defined(__x86_64__) && defined(__linux__) && \
    ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10) || (defined(__clang__) && __clang_major__ >= 9))
#define SC_HAVE_DECODE_BF16 1
#include <immintrin.h>
#else
#define SC_HAVE_DECODE_BF16 0
#endif

namespace sc {
namespace {

inline float widen(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/** scores[j] = scale · q·k_j over the first `keys` rows of k (q widened float32, k bf16). */
SC_MULTIVERSION
void scoreRow(const float* SC_RESTRICT q, const uint16_t* SC_RESTRICT k, float* SC_RESTRICT scores, int64_t keys,
              int64_t d, float scale) {
  for (int64_t j = 0; j < keys; j++) {
    const uint16_t* kj = k + j * d;
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < d; c++) dot += q[c] * widen(kj[c]);
    scores[j] = scale * dot;
  }
}

/** Scores → probabilities rounded to bf16 (as attention_bf16.cc saves and multiplies them). */
void softmaxRowRounded(float* s, int64_t keys) {
  const double sum = expShiftedSumInPlace(s, keys, rowMax(s, keys));
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t j = 0; j < keys; j++) {
    const float f = s[j] * inv;
    uint32_t u;
    std::memcpy(&u, &f, 4);
    s[j] = widen(bf16Bits(u));
  }
}

/** out = Σ_j p_j v_j over the first `keys` rows of v (bf16). */
SC_MULTIVERSION
void weightedRow(const float* SC_RESTRICT p, const uint16_t* SC_RESTRICT v, float* SC_RESTRICT out, int64_t keys,
                 int64_t dv) {
  for (int64_t c = 0; c < dv; c++) out[c] = 0.0f;
  for (int64_t j = 0; j < keys; j++) {
    const float pj = p[j];
    const uint16_t* vj = v + j * dv;
#pragma omp simd
    for (int64_t c = 0; c < dv; c++) out[c] += pj * widen(vj[c]);
  }
}

#if SC_HAVE_DECODE_BF16
bool cpuHasDecodeBf16() {
  static const bool has = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl");
  return has;
}

/** v's upper eight lanes added to its lower eight (zero-masked extracts: GCC 12's plain cast warns). */
__attribute__((target("avx512f,avx2,fma")))
inline __m256 fold(__m512 v) {
  const __m512d w = _mm512_castps_pd(v);
  return _mm256_add_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, w, 0)),
                       _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, w, 1)));
}

/** The four sums of a, b, c, d's 16 lanes, in that order. */
__attribute__((target("avx512f,avx2,fma")))
inline __m128 sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m256 ab = _mm256_hadd_ps(fold(a), fold(b));
  const __m256 cd = _mm256_hadd_ps(fold(c), fold(d));
  const __m256 all = _mm256_hadd_ps(ab, cd);
  return _mm_add_ps(_mm256_castps256_ps128(all), _mm256_extractf128_ps(all, 1));
}

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

/** 16 bf16 of p (the lanes of `lanes`) widened to float32. */
__attribute__((target("avx512f,avx512bw,avx512vl")))
inline __m512 widen16(const uint16_t* p, __mmask16 lanes) {
  const __m256i h = _mm256_maskz_loadu_epi16(lanes, p);
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, _mm512_maskz_cvtepu16_epi32(0xFFFF, h), 16));
}

/**
 * weightedRow with bf16 v widened 16 lanes at a time, 64 columns of out per pass over the keys
 * (four independent sums; each column's order is j ascending, as the portable loop's).
 */
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
void weightedRowBf16(const float* p, const uint16_t* v, float* out, int64_t keys, int64_t dv) {
  for (int64_t c0 = 0; c0 < dv; c0 += 64) {
    __mmask16 lanes[4];
    for (int u = 0; u < 4; u++) {
      const int64_t left = dv - c0 - 16 * u;
      lanes[u] = static_cast<__mmask16>(left >= 16 ? 0xFFFF : left > 0 ? (1u << left) - 1 : 0);
    }
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t j = 0; j < keys; j++) {
      const __m512 pj = _mm512_set1_ps(p[j]);
      const uint16_t* vj = v + j * dv + c0;
      for (int u = 0; u < 4; u++) acc[u] = _mm512_fmadd_ps(pj, widen16(vj + 16 * u, lanes[u]), acc[u]);
    }
    for (int u = 0; u < 4; u++) _mm512_mask_storeu_ps(out + c0 + 16 * u, lanes[u], acc[u]);
  }
}
#endif

/** Scratch one call reuses for every query head: the head's rounded query (bf16 and widened) and its scores. */
struct Scratch {
  std::unique_ptr<uint16_t[]> q;
  std::unique_ptr<float[]> qf, scores;
  explicit Scratch(const AttentionGeometry& g)
      : q(new uint16_t[static_cast<size_t>(std::max<int64_t>(g.d, 1))]),
        qf(new float[static_cast<size_t>(std::max<int64_t>(g.d, 1))]),
        scores(new float[static_cast<size_t>(std::max<int64_t>(g.tk, 1))]) {}
};

/** The call's operands: q, the new position's k and v (float32), the bf16 cache, out. */
struct Operands {
  const float *q, *kNew, *vNew;
  uint16_t *k, *v;
  float* out;
};

/** Stores kv slice s's new position (tk − 1), then attends its query heads [s · groups, (s + 1) · groups). */
void attendSlice(const AttentionGeometry& g, int64_t s, const Operands& o, Scratch& m) {
  const uint16_t* k = o.k + s * g.cap * g.d;
  const uint16_t* v = o.v + s * g.cap * g.dv;
  toBf16(o.kNew + s * g.d, o.k + (s * g.cap + g.tk - 1) * g.d, g.d);
  toBf16(o.vNew + s * g.dv, o.v + (s * g.cap + g.tk - 1) * g.dv, g.dv);
  for (int64_t b = s * g.groups; b < (s + 1) * g.groups; b++) {
    toBf16(o.q + b * g.d, m.q.get(), g.d);
    float* out = o.out + b * g.dv;
#if SC_HAVE_DECODE_BF16
    if (cpuHasDecodeBf16()) {
      scoreRowBf16(m.q.get(), k, m.scores.get(), g.tk, g.d, g.scale);
      softmaxRowRounded(m.scores.get(), g.tk);
      weightedRowBf16(m.scores.get(), v, out, g.tk, g.dv);
      continue;
    }
#endif
    for (int64_t c = 0; c < g.d; c++) m.qf[c] = widen(m.q[c]);
    scoreRow(m.qf.get(), k, m.scores.get(), g.tk, g.d, g.scale);
    softmaxRowRounded(m.scores.get(), g.tk);
    weightedRow(m.scores.get(), v, out, g.tk, g.dv);
  }
}

// attentionDecodeBf16(sizes[bh, tq = 1, tk, d, dv, groups, kvCapacity], scale, causal = false,
//                     q (f32 [bh, d]), kNew (f32 [kv, d]), vNew (f32 [kv, dv]),
//                     k (bf16 [kv, kvCapacity, d]), v (bf16 [kv, kvCapacity, dv]), out (f32 [bh, dv]))
// kv = bh / groups; kNew and vNew are stored at position tk − 1 of the cache, which is then read over [0, tk).
napi_value AttentionDecodeBf16Kernel(Args& a) {
  const AttentionGeometry g = attentionGeometry(a, "attentionDecodeBf16");
  if (g.tq != 1 || g.causal) throwRange("attentionDecodeBf16: one query position per head (tq = 1), no causal mask");
  if (g.tk < 1) throwRange("attentionDecodeBf16: tk counts the new position, so it is at least 1");
  const F32 q = a.f32(3, "q"), kNew = a.f32(4, "kNew"), vNew = a.f32(5, "vNew");
  const U16 k = a.u16(6, "k"), v = a.u16(7, "v");
  const F32 out = a.f32(8, "out");
  const int64_t kv = g.kvSlices();
  a.need(q, g.bh * g.d, "q");
  a.need(kNew, kv * g.d, "kNew");
  a.need(vNew, kv * g.dv, "vNew");
  a.need(k, kv * g.cap * g.d, "k");
  a.need(v, kv * g.cap * g.dv, "v");
  a.need(out, g.bh * g.dv, "out");
  if (g.bh == 0) return undefinedValue(a.env());
  Scratch scratch(g);
  const Operands o{q.p, kNew.p, vNew.p, k.p, v.p, out.p};
  for (int64_t s = 0; s < kv; s++) attendSlice(g, s, o, scratch);
  return undefinedValue(a.env());
}

}  // namespace

void registerAttentionDecode(napi_env env, napi_value exports) {
  defineFunction(env, exports, "attentionDecodeBf16", entry<AttentionDecodeBf16Kernel>);
}

}  // namespace sc
