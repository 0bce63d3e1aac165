// Fused scaled dot-product attention (forward and backward) over [bh, t, d] slices: the two
// products of each direction run as batched GEMMs through `sgemm` (oneDNN where built), and the
// causal mask, softmax, dropout and softmax-backward run in one pass over each row in between.
// Only the probabilities are kept between forward and backward; no score or mask tensor exists.
// Grouped-query attention: `groups` consecutive query slices read one k/v slice; each product runs
// once per k/v slice with those slices as one [groups · tq, ·] block, so gk and gv sum over the
// group inside the GEMM and k/v are never repeated.
#include <cmath>
#include <memory>

#include "attention_geometry.h"
#include "gemm.h"
#include "napi_args.h"
#include "registry.h"
#include "simd.h"
#include "softmax_row.h"
#include "threads.h"
#include "vmath.h"

namespace sc {
namespace {

using Geometry = AttentionGeometry;

constexpr int64_t kGrain = 16384;  // probability entries per thread before the row loops fork

Geometry geometry(const Args& a) { return attentionGeometry(a, "attention"); }

template <class Row>
void forRows(const Geometry& g, Row&& row) {
  const int64_t rows = g.bh * g.tq;
  parallelRange(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(g.tk, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) row(r, g.visible(r % g.tq));
  });
}

// The reductions below carry `omp simd` (the build has -fopenmp-simd): without it GCC keeps an
// ordered scalar loop for a double sum, and with it the vectorised exp that dominates this pass.

/** Row r of scores (already scaled) → probabilities in place; hidden entries become 0. */
SC_VECTOR_KERNEL(void, softmaxRow, (float* SC_RESTRICT s, int64_t lim, int64_t tk), (s, lim, tk)) {
  const double sum = expShiftedSumInPlace(s, lim, rowMax(s, lim));
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t j = 0; j < lim; j++) s[j] *= inv;
  for (int64_t j = lim; j < tk; j++) s[j] = 0.0f;
}

/** dS = scale · (P ∘ (M ∘ dPd) − P · Σ dPd ∘ Pd) for one row, in place over dPd. */
SC_VECTOR_KERNEL(void, softmaxBackwardRow, (const float* SC_RESTRICT p, const float* SC_RESTRICT mask, float* SC_RESTRICT dp,
                        int64_t lim, int64_t tk, float scale), (p, mask, dp, lim, tk, scale)) {
  double dot = 0;
  if (mask) {
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < lim; j++) dot += static_cast<double>(dp[j]) * p[j] * mask[j];
    const float r = static_cast<float>(dot);
    for (int64_t j = 0; j < lim; j++) dp[j] = scale * p[j] * (mask[j] * dp[j] - r);
  } else {
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < lim; j++) dot += static_cast<double>(dp[j]) * p[j];
    const float r = static_cast<float>(dot);
    for (int64_t j = 0; j < lim; j++) dp[j] = scale * p[j] * (dp[j] - r);
  }
  for (int64_t j = lim; j < tk; j++) dp[j] = 0.0f;
}

/**
 * One query row of a thin attention (decode): scores against the first `lim` keys of its k/v
 * slice, the softmax, then out = Σ p_j v_j, in direct loops (the dot products and the row update
 * vectorise over d).
 */
SC_VECTOR_KERNEL(void, attendRow, (const float* SC_RESTRICT q, const float* SC_RESTRICT k, const float* SC_RESTRICT v,
               float* SC_RESTRICT p, float* SC_RESTRICT out, int64_t lim, int64_t tk, int64_t d, int64_t dv,
               float scale), (q, k, v, p, out, lim, tk, d, dv, scale)) {
  for (int64_t j = 0; j < lim; j++) {
    const float* kj = k + j * d;
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < d; c++) dot += q[c] * kj[c];
    p[j] = scale * dot;
  }
  softmaxRow(p, lim, tk);
  for (int64_t c = 0; c < dv; c++) out[c] = 0.0f;
  for (int64_t j = 0; j < lim; j++) {
    const float pj = p[j];
    const float* vj = v + j * dv;
#pragma omp simd
    for (int64_t c = 0; c < dv; c++) out[c] += pj * vj[c];
  }
}

// At most this many query rows per k/v slice (a decode step: the query heads of one kv head) run as
// direct loops: the library products cost more per call than these rows' work (SmolLM2's decode,
// 3 rows × ~100 keys × 64, took ~29 µs a call for 9 heads through six sgemm calls).
constexpr int64_t kThinRows = 4;

/** A buffer every use below overwrites whole before reading (std::vector would zero it first). */
std::unique_ptr<float[]> uninitialised(int64_t n) { return std::unique_ptr<float[]>(new float[static_cast<size_t>(n)]); }

/** A batched product over the k/v slices: C_b = alpha op(A_b) op(B_b) + beta C_b, leading dimensions given. */
void batched(const Geometry& g, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
             int64_t lda, int64_t sA, const float* B, int64_t ldb, int64_t sB, float beta, float* C, int64_t ldc,
             int64_t sC) {
  Gemm m;
  m.transA = ta;
  m.transB = tb;
  m.M = M;
  m.N = N;
  m.K = K;
  m.alpha = alpha;
  m.beta = beta;
  m.A = A;
  m.lda = lda;
  m.strideA = sA;
  m.B = B;
  m.ldb = ldb;
  m.strideB = sB;
  m.C = C;
  m.ldc = ldc;
  m.strideC = sC;
  m.batch = g.kvSlices();
  sgemm(m);
}

// Causal attention runs its products per block of query rows, each over the keys its last row may
// see: the masked upper triangle is never multiplied (at t = 512, 4 blocks do 5/8 of the full work).
constexpr int64_t kQueryBlock = 128;

/** Rows [row0, row0 + rows) of a k/v slice's [groups · tq] query block, which read keys [0, keys). */
struct Block {
  int64_t row0, rows, keys;
};

/** Without a causal mask, one block of every row and key; with it, blocks of one group's rows. */
template <class F>
void forBlocks(const Geometry& g, F&& f) {
  if (!g.causal) return f(Block{0, g.groupRows(), g.tk});
  for (int64_t gi = 0; gi < g.groups; gi++) {
    for (int64_t i0 = 0; i0 < g.tq; i0 += kQueryBlock) {
      const int64_t i1 = std::min(g.tq, i0 + kQueryBlock);
      f(Block{gi * g.tq + i0, i1 - i0, g.visible(i1 - 1)});
    }
  }
}

// attention(sizes[bh, tq, tk, d, dv, groups, kvCapacity], scale, causal, q, k, v, dropMask|null, out, probs)
napi_value AttentionKernel(Args& a) {
  const Geometry g = geometry(a);
  const F32 q = a.f32(3, "q"), k = a.f32(4, "k"), v = a.f32(5, "v"), mask = a.f32OrNull(6, "dropMask");
  const F32 out = a.f32(7, "out"), probs = a.f32(8, "probs");
  const int64_t pn = g.bh * g.tq * g.tk, kv = g.kvSlices(), rows = g.groupRows();
  a.need(q, g.bh * g.tq * g.d, "q");
  a.need(k, kv * g.cap * g.d, "k");
  a.need(v, kv * g.cap * g.dv, "v");
  a.need(out, g.bh * g.tq * g.dv, "out");
  a.need(probs, pn, "probs");
  if (mask.p) a.need(mask, pn, "dropMask");
  if (g.bh * g.tq == 0 || g.dv == 0) return undefinedValue(a.env());
  if (!mask.p && g.groupRows() <= kThinRows) {
    forRows(g, [&](int64_t r, int64_t lim) {
      const int64_t slice = r / g.tq / g.groups;
      attendRow(q.p + r * g.d, k.p + slice * g.cap * g.d, v.p + slice * g.cap * g.dv, probs.p + r * g.tk,
                out.p + r * g.dv, lim, g.tk, g.d, g.dv, g.scale);
    });
    return undefinedValue(a.env());
  }
  forBlocks(g, [&](Block b) {
    batched(g, false, true, b.rows, b.keys, g.d, g.scale, q.p + b.row0 * g.d, g.d, rows * g.d, k.p, g.d, g.cap * g.d,
            0.0f, probs.p + b.row0 * g.tk, g.tk, rows * g.tk);
  });
  forRows(g, [&](int64_t r, int64_t lim) { softmaxRow(probs.p + r * g.tk, lim, g.tk); });
  const float* pd = probs.p;
  std::unique_ptr<float[]> dropped;
  if (mask.p) {
    dropped = uninitialised(pn);
    parallelRange(pn, kGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; i++) dropped[i] = probs.p[i] * mask.p[i];
    });
    pd = dropped.get();
  }
  forBlocks(g, [&](Block b) {
    batched(g, false, false, b.rows, g.dv, b.keys, 1.0f, pd + b.row0 * g.tk, g.tk, rows * g.tk, v.p, g.dv,
            g.cap * g.dv, 0.0f, out.p + b.row0 * g.dv, g.dv, rows * g.dv);
  });
  return undefinedValue(a.env());
}

// attentionBackward(sizes, scale, causal, q, k, v, probs, dropMask|null, gy, gq|null, gk|null, gv|null)
napi_value AttentionBackwardKernel(Args& a) {
  const Geometry g = geometry(a);
  const F32 q = a.f32(3, "q"), k = a.f32(4, "k"), v = a.f32(5, "v"), probs = a.f32(6, "probs");
  const F32 mask = a.f32OrNull(7, "dropMask"), gy = a.f32(8, "gy");
  const F32 gq = a.f32OrNull(9, "gq"), gk = a.f32OrNull(10, "gk"), gv = a.f32OrNull(11, "gv");
  const int64_t pn = g.bh * g.tq * g.tk, kv = g.kvSlices(), rows = g.groupRows();
  a.need(q, g.bh * g.tq * g.d, "q");
  a.need(k, kv * g.cap * g.d, "k");
  a.need(v, kv * g.cap * g.dv, "v");
  a.need(probs, pn, "probs");
  a.need(gy, g.bh * g.tq * g.dv, "gy");
  if (mask.p) a.need(mask, pn, "dropMask");
  if (gq.p) a.need(gq, g.bh * g.tq * g.d, "gq");
  if (gk.p) a.need(gk, kv * g.cap * g.d, "gk");
  if (gv.p) a.need(gv, kv * g.cap * g.dv, "gv");
  if (pn == 0) return undefinedValue(a.env());
  const std::unique_ptr<float[]> scratch = uninitialised(pn);
  if (gv.p) {
    const float* pd = probs.p;
    if (mask.p) {
      parallelRange(pn, kGrain, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; i++) scratch[i] = probs.p[i] * mask.p[i];
      });
      pd = scratch.get();
    }
    // gv += Pdᵀ gy
    forBlocks(g, [&](Block b) {
      batched(g, true, false, b.keys, g.dv, b.rows, 1.0f, pd + b.row0 * g.tk, g.tk, rows * g.tk, gy.p + b.row0 * g.dv,
              g.dv, rows * g.dv, 1.0f, gv.p, g.dv, g.cap * g.dv);
    });
  }
  if (!gq.p && !gk.p) return undefinedValue(a.env());
  // dPd = gy vᵀ, then the softmax backward turns it into the (scaled) score gradient in place.
  forBlocks(g, [&](Block b) {
    batched(g, false, true, b.rows, b.keys, g.dv, 1.0f, gy.p + b.row0 * g.dv, g.dv, rows * g.dv, v.p, g.dv,
            g.cap * g.dv, 0.0f, scratch.get() + b.row0 * g.tk, g.tk, rows * g.tk);
  });
  forRows(g, [&](int64_t r, int64_t lim) {
    softmaxBackwardRow(probs.p + r * g.tk, mask.p ? mask.p + r * g.tk : nullptr, scratch.get() + r * g.tk, lim, g.tk, g.scale);
  });
  forBlocks(g, [&](Block b) {
    const float* ds = scratch.get() + b.row0 * g.tk;
    if (gq.p)  // gq += dS k
      batched(g, false, false, b.rows, g.d, b.keys, 1.0f, ds, g.tk, rows * g.tk, k.p, g.d, g.cap * g.d, 1.0f,
              gq.p + b.row0 * g.d, g.d, rows * g.d);
    if (gk.p)  // gk += dSᵀ q
      batched(g, true, false, b.keys, g.d, b.rows, 1.0f, ds, g.tk, rows * g.tk, q.p + b.row0 * g.d, g.d, rows * g.d,
              1.0f, gk.p, g.d, g.cap * g.d);
  });
  return undefinedValue(a.env());
}

}  // namespace

void registerAttention(napi_env env, napi_value exports) {
  defineFunction(env, exports, "attention", entry<AttentionKernel>);
  defineFunction(env, exports, "attentionBackward", entry<AttentionBackwardKernel>);
}

}  // namespace sc
