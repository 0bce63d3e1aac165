// Scaled dot-product attention on bfloat16 q, k, v (the bf16 step's autocast casts them), forward
// and backward, as attention.cc's float32 kernel blocks it: the causal case runs each block of 128
// query rows over only the keys its last row sees, so the masked upper triangle is never
// multiplied (at t = 512 the products do 5/8 of the full square's work). The products run in bf16
// with float32 accumulation (gemmBf16: oneDNN's AMX / AVX512-BF16 kernels); the scores, the
// softmax, dropout and the softmax backward in float32, one block at a time in a block-sized
// scratch. The arithmetic is the unfused bf16 path's (src/tensor/ops/attention.ts): scores =
// scale · q kᵀ, P = softmax, out = bf16(P ∘ mask) v; backward dS = P ∘ (dPd ∘ mask − Σ …) rounded
// to bf16, gq = scale · dS k, gk = scale · dSᵀ q, gv = bf16(P ∘ mask)ᵀ gy.
//
// Saved between the two: the bf16 probabilities in a blocked layout, each block's [rows, keys]
// per query slice packed one after the other: only the visible blocks (attention.ts
// bf16SavedLength computes the same length). Grouped-query attention as attention.cc: `groups`
// consecutive query slices read one k/v slice (gk and gv sum over them), k and v never repeated.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "attention_geometry.h"
#include "bf16.h"
#include "napi_args.h"
#include "registry.h"
#include "simd.h"
#include "softmax_row.h"
#include "threads.h"
#include "vmath.h"

namespace sc {
namespace {

using Geometry = AttentionGeometry;

constexpr int64_t kQueryBlock = 128;  // as attention.cc (and attention.ts bf16SavedLength)
constexpr int64_t kGrain = 16384;     // block entries per thread before the row loops fork

/**
 * Query positions [i0, i0 + rows) of every slice, reading keys [0, keys); slice b's saved
 * probabilities of the block are [rows, keys] at saved + b · rows · keys.
 */
struct Block {
  int64_t i0, rows, keys, saved;
};

/** Without a causal mask one block of every row and key; with it, blocks of kQueryBlock query positions. */
std::vector<Block> blocks(const Geometry& g) {
  std::vector<Block> out;
  int64_t saved = 0;
  const int64_t step = g.causal ? kQueryBlock : std::max<int64_t>(g.tq, 1);
  for (int64_t i0 = 0; i0 < g.tq; i0 += step) {
    const int64_t i1 = std::min(g.tq, i0 + step);
    out.push_back(Block{i0, i1 - i0, g.visible(i1 - 1), saved});
    saved += g.bh * (i1 - i0) * g.visible(i1 - 1);
  }
  return out;
}

/** bf16 elements the saved probabilities take (every block's bh · rows · keys). */
int64_t savedLength(const Geometry& g) {
  const std::vector<Block> bs = blocks(g);
  return bs.empty() ? 0 : bs.back().saved + g.bh * bs.back().rows * bs.back().keys;
}

/**
 * Arguments 0..2: sizes [bh, tq, tk, d, dv, groups, kvCapacity] (a Float64Array), scale, causal.
 * k and v must be packed (kvCapacity = tk): a KV cache's strided slices take the float32 kernel.
 */
Geometry geometry(const Args& a) {
  const double* p = a.ints(0, "geometry", 7);
  if (p[6] != p[2]) throwRange("attentionBf16: k and v must be packed (kvCapacity = tk)");
  return attentionGeometry(a, "attentionBf16");
}

/**
 * One product of a slice, every operand packed (bf16.h GemmBf16). One slice at a time rather than
 * batched over slices: oneDNN 2.6 runs its AMX brgemm matmul only on dense batches, and a block's
 * rows of q (or keys of k) are a strided batch.
 */
void product(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A, const uint16_t* B,
             float beta, float* C) {
  GemmBf16 m;
  m.transA = ta;
  m.transB = tb;
  m.M = M;
  m.N = N;
  m.K = K;
  m.alpha = alpha;
  m.beta = beta;
  m.A = A;
  m.B = B;
  m.C = C;
  gemmBf16(m);
}

/** Runs row(i, lim) for every row of a block's [rows, keys] scratch; lim is the keys its query sees. */
template <class Row>
void forBlockRows(const Geometry& g, const Block& b, Row&& row) {
  parallelRange(b.rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(b.keys, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) row(i, g.visible(b.i0 + i));
  });
}

/** Row of scaled scores → probabilities: p (bf16, saved) and pd = bf16(p ∘ mask) (the operand of v). */
SC_VECTOR_KERNEL(void, softmaxRowBf16, (float* SC_RESTRICT s, int64_t lim, int64_t keys, const float* SC_RESTRICT mask,
                    uint16_t* SC_RESTRICT p, uint16_t* SC_RESTRICT pd), (s, lim, keys, mask, p, pd)) {
  const double sum = expShiftedSumInPlace(s, lim, rowMax(s, lim));
  const float inv = static_cast<float>(1.0 / sum);
  toBf16Scaled(s, inv, p, lim);
  std::fill(p + lim, p + keys, uint16_t{0});
  if (!pd) return;
  for (int64_t j = 0; j < lim; j++) pd[j] = bf16Of(s[j] * inv * mask[j]);
  std::fill(pd + lim, pd + keys, uint16_t{0});
}

/** Row of dP (float32, in place) → dS = P ∘ (M ∘ dP − Σ M ∘ dP ∘ P), unscaled (the products carry scale). */
SC_VECTOR_KERNEL(void, softmaxBackwardRowBf16, (const uint16_t* SC_RESTRICT pb, const float* SC_RESTRICT mask, float* SC_RESTRICT dp,
                            int64_t lim, int64_t keys), (pb, mask, dp, lim, keys)) {
  if (mask) {
    for (int64_t j = 0; j < lim; j++) dp[j] *= mask[j];
  }
  double dot = 0;
#pragma omp simd reduction(+ : dot)
  for (int64_t j = 0; j < lim; j++) dot += static_cast<double>(dp[j]) * widenBf16(pb[j]);
  const float r = static_cast<float>(dot);
  for (int64_t j = 0; j < lim; j++) dp[j] = widenBf16(pb[j]) * (dp[j] - r);
  for (int64_t j = lim; j < keys; j++) dp[j] = 0.0f;
}

template <class T>
std::unique_ptr<T[]> uninitialised(int64_t n) {
  return std::unique_ptr<T[]>(new T[static_cast<size_t>(std::max<int64_t>(n, 1))]);
}

/** The largest block's rows · keys: the scratch one slice of a block needs. */
int64_t largestBlock(const std::vector<Block>& bs) {
  int64_t n = 0;
  for (const Block& b : bs) n = std::max(n, b.rows * b.keys);
  return n;
}

/** Slice b's rows of a block, in a [bh, tq, width] tensor. */
template <class T>
T* rowsOf(const Geometry& g, T* base, const Block& blk, int64_t b, int64_t width) {
  return base + (b * g.tq + blk.i0) * width;
}

// attentionBf16(sizes, scale, causal, q, k, v (bf16), dropMask|null, out (f32), probs (bf16, savedLength))
napi_value AttentionBf16Kernel(Args& a) {
  const Geometry g = geometry(a);
  const U16 q = a.u16(3, "q"), k = a.u16(4, "k"), v = a.u16(5, "v");
  const F32 mask = a.f32OrNull(6, "dropMask"), out = a.f32(7, "out");
  const U16 probs = a.u16(8, "probs");
  const int64_t kv = g.kvSlices();
  if (q.n < g.bh * g.tq * g.d || k.n < kv * g.tk * g.d || v.n < kv * g.tk * g.dv)
    throwRange("attentionBf16: q, k or v is shorter than the geometry says");
  if (probs.n < savedLength(g)) throwRange("attentionBf16: probs is shorter than the visible blocks need");
  a.need(out, g.bh * g.tq * g.dv, "out");
  if (mask.p) a.need(mask, g.bh * g.tq * g.tk, "dropMask");
  if (g.bh * g.tq == 0 || g.dv == 0) return undefinedValue(a.env());
  if (g.tk == 0) {
    std::fill(out.p, out.p + g.bh * g.tq * g.dv, 0.0f);
    return undefinedValue(a.env());
  }
  const std::vector<Block> bs = blocks(g);
  const int64_t most = largestBlock(bs);
  const std::unique_ptr<float[]> scores = uninitialised<float>(most);
  const std::unique_ptr<uint16_t[]> dropped = uninitialised<uint16_t>(mask.p ? most : 0);
  for (const Block& blk : bs) {
    for (int64_t b = 0; b < g.bh; b++) {
      const int64_t s = b / g.groups;
      uint16_t* saved = probs.p + blk.saved + b * blk.rows * blk.keys;
      product(false, true, blk.rows, blk.keys, g.d, g.scale, rowsOf(g, q.p, blk, b, g.d), k.p + s * g.tk * g.d, 0.0f,
              scores.get());
      const float* maskRows = mask.p ? rowsOf(g, mask.p, blk, b, g.tk) : nullptr;
      forBlockRows(g, blk, [&](int64_t i, int64_t lim) {
        const int64_t at = i * blk.keys;
        softmaxRowBf16(scores.get() + at, lim, blk.keys, maskRows ? maskRows + i * g.tk : nullptr, saved + at,
                       maskRows ? dropped.get() + at : nullptr);
      });
      product(false, false, blk.rows, g.dv, blk.keys, 1.0f, mask.p ? dropped.get() : saved, v.p + s * g.tk * g.dv,
              0.0f, rowsOf(g, out.p, blk, b, g.dv));
    }
  }
  return undefinedValue(a.env());
}

// attentionBf16Backward(sizes, scale, causal, q, k, v (bf16), probs (bf16), dropMask|null, gy (bf16),
//                       gq|null, gk|null, gv|null (f32, accumulated into))
napi_value AttentionBf16BackwardKernel(Args& a) {
  const Geometry g = geometry(a);
  const U16 q = a.u16(3, "q"), k = a.u16(4, "k"), v = a.u16(5, "v"), probs = a.u16(6, "probs");
  const F32 mask = a.f32OrNull(7, "dropMask");
  const U16 gy = a.u16(8, "gy");
  const F32 gq = a.f32OrNull(9, "gq"), gk = a.f32OrNull(10, "gk"), gv = a.f32OrNull(11, "gv");
  const int64_t kv = g.kvSlices();
  if (q.n < g.bh * g.tq * g.d || k.n < kv * g.tk * g.d || v.n < kv * g.tk * g.dv || gy.n < g.bh * g.tq * g.dv)
    throwRange("attentionBf16Backward: q, k, v or gy is shorter than the geometry says");
  if (probs.n < savedLength(g)) throwRange("attentionBf16Backward: probs is shorter than the visible blocks need");
  if (mask.p) a.need(mask, g.bh * g.tq * g.tk, "dropMask");
  if (gq.p) a.need(gq, g.bh * g.tq * g.d, "gq");
  if (gk.p) a.need(gk, kv * g.tk * g.d, "gk");
  if (gv.p) a.need(gv, kv * g.tk * g.dv, "gv");
  if (g.bh * g.tq * g.tk == 0 || g.dv == 0) return undefinedValue(a.env());
  const std::vector<Block> bs = blocks(g);
  const int64_t most = largestBlock(bs);
  const bool scoresGrad = gq.p || gk.p;
  const std::unique_ptr<float[]> dp = uninitialised<float>(scoresGrad ? most : 0);
  const std::unique_ptr<uint16_t[]> ds = uninitialised<uint16_t>(scoresGrad ? most : 0);
  const std::unique_ptr<uint16_t[]> dropped = uninitialised<uint16_t>(mask.p && gv.p ? most : 0);
  for (const Block& blk : bs) {
    for (int64_t b = 0; b < g.bh; b++) {
      const int64_t s = b / g.groups;
      const uint16_t* saved = probs.p + blk.saved + b * blk.rows * blk.keys;
      const uint16_t* gyRows = rowsOf(g, gy.p, blk, b, g.dv);
      const float* maskRows = mask.p ? rowsOf(g, mask.p, blk, b, g.tk) : nullptr;
      if (gv.p) {  // gv += Pdᵀ gy, Pd = bf16(P ∘ mask) as the forward multiplied v by
        const uint16_t* pd = saved;
        if (maskRows) {
          forBlockRows(g, blk, [&](int64_t i, int64_t) {
            for (int64_t j = 0; j < blk.keys; j++)
              dropped[i * blk.keys + j] = bf16Of(widenBf16(saved[i * blk.keys + j]) * maskRows[i * g.tk + j]);
          });
          pd = dropped.get();
        }
        product(true, false, blk.keys, g.dv, blk.rows, 1.0f, pd, gyRows, 1.0f, gv.p + s * g.tk * g.dv);
      }
      if (!scoresGrad) continue;
      // dPd = gy vᵀ, then the softmax backward in float32, rounded to bf16 for the two products.
      product(false, true, blk.rows, blk.keys, g.dv, 1.0f, gyRows, v.p + s * g.tk * g.dv, 0.0f, dp.get());
      forBlockRows(g, blk, [&](int64_t i, int64_t lim) {
        const int64_t at = i * blk.keys;
        softmaxBackwardRowBf16(saved + at, maskRows ? maskRows + i * g.tk : nullptr, dp.get() + at, lim, blk.keys);
        toBf16(dp.get() + at, ds.get() + at, blk.keys);
      });
      if (gq.p)  // gq += scale · dS k
        product(false, false, blk.rows, g.d, blk.keys, g.scale, ds.get(), k.p + s * g.tk * g.d, 1.0f,
                rowsOf(g, gq.p, blk, b, g.d));
      if (gk.p)  // gk += scale · dSᵀ q
        product(true, false, blk.keys, g.d, blk.rows, g.scale, ds.get(), rowsOf(g, q.p, blk, b, g.d), 1.0f,
                gk.p + s * g.tk * g.d);
    }
  }
  return undefinedValue(a.env());
}

}  // namespace

void registerAttentionBf16(napi_env env, napi_value exports) {
  defineFunction(env, exports, "attentionBf16", entry<AttentionBf16Kernel>);
  defineFunction(env, exports, "attentionBf16Backward", entry<AttentionBf16BackwardKernel>);
}

}  // namespace sc
