// Max and average pooling (NCHW), planes split across threads.
//
// Max pooling is ours: the contract's argmax is a flat index into the input plane, which oneDNN's
// workspace does not provide (it stores a window offset), and oneDNN skips NaN and gives -FLT_MAX
// for an all -inf window where the contract (like torch) propagates them. Average pooling uses
// oneDNN when built with it (pool_dnnl.cc), these loops otherwise.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "geometry.h"
#include "napi_args.h"
#include "pool.h"
#include "registry.h"
#include "simd.h"
#include "threads.h"

namespace sc {
namespace {

int g_avgEngine = 0;  // 0: oneDNN when built with it, 1: our loops (test hook)

/**
 * Output columns [lo, hi) whose window column kx lands inside the image: 0 <= ox·s − pad + kx < inW.
 * Looping over window taps outermost and output columns innermost makes every tap a SIMD-friendly
 * sweep along a row, with the padding handled by these bounds rather than per-element tests.
 */
inline void validColumns(const PoolGeom& g, int64_t kx, int64_t* lo, int64_t* hi) {
  const int64_t off = kx - g.padW;  // input column of output column 0
  *lo = off >= 0 ? 0 : (-off + g.strideW - 1) / g.strideW;
  *hi = g.inW - off <= 0 ? 0 : std::min(g.outW, (g.inW - off + g.strideW - 1) / g.strideW);
}

/** Planes (batch × channels) split across threads. */
template <class Fn>
void perPlane(const PoolGeom& g, Fn&& fn) {
  const int64_t planes = g.batch * g.channels;
  const int64_t per = std::max<int64_t>(1, g.inH * g.inW);
  parallelRange(planes, std::max<int64_t>(1, 32768 / per), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; p++) fn(p);
  });
}

/** count_include_pad divisor, separable: the window's extent inside the padded image per axis. */
inline int64_t extentInPadded(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t in) {
  const int64_t s = o * stride - pad;
  return std::min(s + k, in + pad) - s;
}

/** ReLU as the relu kernel computes it (NaN → 0), applied to a pooled cell's candidates when fused. */
inline float reluOf(float v) { return v > 0 ? v : 0.0f; }

/**
 * With Relu, the window's cells are relu(x): the output is maxPool(relu(x)) and its argmax is −1
 * where that maximum is 0, since relu passes no gradient there (the backward skips −1), so the
 * fused op gives relu-then-pool's values and gradients exactly.
 */
template <bool Relu>
inline __attribute__((always_inline)) void maxPlaneOf(const PoolGeom& g, const float* SC_RESTRICT xp, float* SC_RESTRICT yp,
                                                      int32_t* SC_RESTRICT ap) {
  const int64_t sw = g.strideW;
  for (int64_t oy = 0; oy < g.outH; oy++) {
    float* best = yp + oy * g.outW;
    int32_t* at = ap + oy * g.outW;
    for (int64_t ox = 0; ox < g.outW; ox++) {
      best[ox] = -INFINITY;  // padding is -inf: only in-image cells compete
      at[ox] = -1;
    }
    for (int64_t ky = 0; ky < g.kH; ky++) {
      const int64_t iy = oy * g.strideH - g.padH + ky;
      if (iy < 0 || iy >= g.inH) continue;
      const float* row = xp + iy * g.inW;
      for (int64_t kx = 0; kx < g.kW; kx++) {
        int64_t lo, hi;
        validColumns(g, kx, &lo, &hi);
        const int64_t off = kx - g.padW;
        const int32_t base = static_cast<int32_t>(iy * g.inW + off);
        // The first in-image cell is taken even if NaN, then strictly greater ones replace it
        // (ties keep the earliest in scan order), as selects: random data defeats branches.
        for (int64_t ox = lo; ox < hi; ox++) {
          const float v = Relu ? reluOf(row[ox * sw + off]) : row[ox * sw + off];
          const bool take = v > best[ox] || at[ox] < 0;
          best[ox] = take ? v : best[ox];
          at[ox] = take ? base + static_cast<int32_t>(ox * sw) : at[ox];
        }
      }
    }
    if (Relu)
      for (int64_t ox = 0; ox < g.outW; ox++) at[ox] = best[ox] > 0 ? at[ox] : -1;
  }
}

/** One 2×2 window (cells a b / c d, a at flat index ia): first maximum in scan order wins. */
template <bool Relu>
inline __attribute__((always_inline)) void max2x2(float a, float b, float c, float d, int32_t ia, int32_t W, float* best, int32_t* at) {
  if (Relu) a = reluOf(a), b = reluOf(b), c = reluOf(c), d = reluOf(d);
  float m = a;
  int32_t k = ia;
  k = b > m ? ia + 1 : k;
  m = b > m ? b : m;
  k = c > m ? ia + W : k;
  m = c > m ? c : m;
  k = d > m ? ia + W + 1 : k;
  m = d > m ? d : m;
  *best = m;
  *at = Relu && !(m > 0) ? -1 : k;
}

#if defined(__GNUC__) || defined(__clang__)
/** Eight lanes (AVX2 in the x86-64-v3 clone) for rows of ≥ 8 windows. */
struct Lanes8 {
  static constexpr int n = 8;
  typedef float F __attribute__((vector_size(32)));
  typedef int32_t I __attribute__((vector_size(32)));
  static I even() { return I{0, 2, 4, 6, 8, 10, 12, 14}; }
  /** Interleaving a and b: the first and the second half of the pairs. */
  static I low() { return I{0, 8, 1, 9, 2, 10, 3, 11}; }
  static I high() { return I{4, 12, 5, 13, 6, 14, 7, 15}; }
};

/** Four lanes for rows of 4–7 windows (the second pooling of a 28×28 CNN: 7 a row). */
struct Lanes4 {
  static constexpr int n = 4;
  typedef float F __attribute__((vector_size(16)));
  typedef int32_t I __attribute__((vector_size(16)));
  static I even() { return I{0, 2, 4, 6}; }
  static I low() { return I{0, 4, 1, 5}; }
  static I high() { return I{2, 6, 3, 7}; }
};

/** L::n windows at once: even/odd columns of both rows deinterleaved with shuffles. */
template <bool Relu, class L>
inline __attribute__((always_inline)) void max2x2xN(const float* r0, const float* r1, int32_t ia, int32_t W, float* best, int32_t* at) {
  typedef typename L::F F;
  typedef typename L::I I;
  F p0, p1, q0, q1;
  std::memcpy(&p0, r0, sizeof(F));
  std::memcpy(&p1, r0 + L::n, sizeof(F));
  std::memcpy(&q0, r1, sizeof(F));
  std::memcpy(&q1, r1 + L::n, sizeof(F));
  const I even = L::even(), odd = even + 1;
  F a = __builtin_shuffle(p0, p1, even), b = __builtin_shuffle(p0, p1, odd);
  F c = __builtin_shuffle(q0, q1, even), d = __builtin_shuffle(q0, q1, odd);
  const F zero = {};
  if (Relu) {
    a = a > zero ? a : zero;
    b = b > zero ? b : zero;
    c = c > zero ? c : zero;
    d = d > zero ? d : zero;
  }
  const I k0 = ia + even;
  F m = a;
  I k = k0;
  I gt = b > m;
  k = gt ? k0 + 1 : k;
  m = gt ? b : m;
  gt = c > m;
  k = gt ? k0 + W : k;
  m = gt ? c : m;
  gt = d > m;
  k = gt ? k0 + W + 1 : k;
  m = gt ? d : m;
  if (Relu) k = m > zero ? k : -1;
  std::memcpy(best, &m, sizeof(F));
  std::memcpy(at, &k, sizeof(F));
}

/**
 * fn(o) for blocks of L::n outputs covering [0, ow) (ow ≥ L::n); a row whose width is not a
 * multiple of L::n ends with one overlapping block, recomputing a few outputs identically, rather
 * than a scalar tail, since CNN rows are short (14 and 7 outputs at 28×28).
 */
template <class L, class Fn>
inline __attribute__((always_inline)) void blocksOf(int64_t ow, Fn&& fn) {
  for (int64_t ox = 0;; ox += L::n) {
    const int64_t o = std::min<int64_t>(ox, ow - L::n);
    fn(o);
    if (o == ow - L::n) break;
  }
}

/** block(lanes) with the widest lanes a row of ow outputs fills; false for a row too narrow (the scalar loop's). */
template <class Block>
inline __attribute__((always_inline)) bool widestLanes(int64_t ow, Block&& block) {
  if (ow >= Lanes8::n) {
    block(Lanes8{});
    return true;
  }
  if (ow >= Lanes4::n) {
    block(Lanes4{});
    return true;
  }
  return false;
}
#endif

/** The common CNN case (2×2 window, stride 2, no padding), a vector of outputs per step. */
template <bool Relu>
inline __attribute__((always_inline)) void maxPlane2x2Of(const PoolGeom& g, const float* SC_RESTRICT xp, float* SC_RESTRICT yp,
                                                         int32_t* SC_RESTRICT ap) {
  const int32_t W = static_cast<int32_t>(g.inW);
  const int64_t ow = g.outW;
  for (int64_t oy = 0; oy < g.outH; oy++) {
    const float* r0 = xp + 2 * oy * W;
    const float* r1 = r0 + W;
    const int32_t i0 = static_cast<int32_t>(2 * oy * W);
    float* best = yp + oy * ow;
    int32_t* at = ap + oy * ow;
#if defined(__GNUC__) || defined(__clang__)
    const auto block = [&](auto lanes) {
      blocksOf<decltype(lanes)>(ow, [&](int64_t o) {
        max2x2xN<Relu, decltype(lanes)>(r0 + 2 * o, r1 + 2 * o, i0 + static_cast<int32_t>(2 * o), W, best + o, at + o);
      });
    };
    if (widestLanes(ow, block)) continue;
#endif
    for (int64_t ox = 0; ox < ow; ox++)
      max2x2<Relu>(r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1], i0 + static_cast<int32_t>(2 * ox), W,
             best + ox, at + ox);
  }
}

SC_VECTOR_KERNEL(void, maxPlane, (const PoolGeom& g, const float* SC_RESTRICT xp, float* SC_RESTRICT yp, int32_t* SC_RESTRICT ap, bool relu), (g, xp, yp, ap, relu)) {
  if (relu) maxPlaneOf<true>(g, xp, yp, ap);
  else maxPlaneOf<false>(g, xp, yp, ap);
}

SC_VECTOR_KERNEL(void, maxPlane2x2, (const PoolGeom& g, const float* SC_RESTRICT xp, float* SC_RESTRICT yp, int32_t* SC_RESTRICT ap, bool relu), (g, xp, yp, ap, relu)) {
  if (relu) maxPlane2x2Of<true>(g, xp, yp, ap);
  else maxPlane2x2Of<false>(g, xp, yp, ap);
}

SC_VECTOR_KERNEL(void, avgPlane, (const PoolGeom& g, const float* SC_RESTRICT xp, float* SC_RESTRICT yp, const float* SC_RESTRICT invW), (g, xp, yp, invW)) {
  const int64_t sw = g.strideW;
  for (int64_t oy = 0; oy < g.outH; oy++) {
    float* out = yp + oy * g.outW;
    for (int64_t ox = 0; ox < g.outW; ox++) out[ox] = 0;
    for (int64_t ky = 0; ky < g.kH; ky++) {
      const int64_t iy = oy * g.strideH - g.padH + ky;
      if (iy < 0 || iy >= g.inH) continue;
      const float* row = xp + iy * g.inW;
      for (int64_t kx = 0; kx < g.kW; kx++) {
        int64_t lo, hi;
        validColumns(g, kx, &lo, &hi);
        const int64_t off = kx - g.padW;
        for (int64_t ox = lo; ox < hi; ox++) out[ox] += row[ox * sw + off];
      }
    }
    const float invH = 1.0f / static_cast<float>(extentInPadded(oy, g.strideH, g.padH, g.kH, g.inH));
    for (int64_t ox = 0; ox < g.outW; ox++) out[ox] *= invH * invW[ox];
  }
}

SC_VECTOR_KERNEL(void, avgBackwardPlane, (const PoolGeom& g, const float* SC_RESTRICT gp, float* SC_RESTRICT out,
                      const float* SC_RESTRICT invW, float* SC_RESTRICT share), (g, gp, out, invW, share)) {
  const int64_t sw = g.strideW;
  for (int64_t oy = 0; oy < g.outH; oy++) {
    const float invH = 1.0f / static_cast<float>(extentInPadded(oy, g.strideH, g.padH, g.kH, g.inH));
    for (int64_t ox = 0; ox < g.outW; ox++) share[ox] = gp[oy * g.outW + ox] * invH * invW[ox];
    for (int64_t ky = 0; ky < g.kH; ky++) {
      const int64_t iy = oy * g.strideH - g.padH + ky;
      if (iy < 0 || iy >= g.inH) continue;
      float* row = out + iy * g.inW;
      for (int64_t kx = 0; kx < g.kW; kx++) {
        int64_t lo, hi;
        validColumns(g, kx, &lo, &hi);
        const int64_t off = kx - g.padW;
        for (int64_t ox = lo; ox < hi; ox++) row[ox * sw + off] += share[ox];
      }
    }
  }
}

/** 1 / (window width inside the padded image) per output column. */
std::vector<float> inverseWidths(const PoolGeom& g) {
  std::vector<float> inv(static_cast<size_t>(g.outW));
  for (int64_t ox = 0; ox < g.outW; ox++)
    inv[ox] = 1.0f / static_cast<float>(extentInPadded(ox, g.strideW, g.padW, g.kW, g.inW));
  return inv;
}

// maxPool2d(geometry, x, y, argmax), and maxPool2dRelu: the same over relu(x)
template <bool Relu>
napi_value MaxPoolKernel(Args& a) {
  const PoolGeom g = poolGeom(a, 0);
  const F32 x = a.f32(1, "x"), y = a.f32(2, "y");
  const I32 arg = a.i32(3, "argmax");
  a.need(x, g.xSize(), "x");
  a.need(y, g.ySize(), "y");
  a.need(arg, g.ySize(), "argmax");
  const int64_t ihw = g.inH * g.inW, ohw = g.outH * g.outW;
  const bool twoByTwo = g.kH == 2 && g.kW == 2 && g.strideH == 2 && g.strideW == 2 && g.padH == 0 && g.padW == 0;
  perPlane(g, [&](int64_t p) {
    if (twoByTwo) maxPlane2x2(g, x.p + p * ihw, y.p + p * ohw, arg.p + p * ohw, Relu);
    else maxPlane(g, x.p + p * ihw, y.p + p * ohw, arg.p + p * ohw, Relu);
  });
  return undefinedValue(a.env());
}

// maxPool2dBackward(geometry, gy, argmax, gx)
napi_value MaxPoolBackwardKernel(Args& a) {
  const PoolGeom g = poolGeom(a, 0);
  const F32 gy = a.f32(1, "gy"), gx = a.f32(3, "gx");
  const I32 arg = a.i32(2, "argmax");
  a.need(gy, g.ySize(), "gy");
  a.need(arg, g.ySize(), "argmax");
  a.need(gx, g.xSize(), "gx");
  const int64_t ihw = g.inH * g.inW, ohw = g.outH * g.outW;
  std::atomic<bool> bad{false};
  perPlane(g, [&](int64_t p) {
    const float* gp = gy.p + p * ohw;
    const int32_t* ap = arg.p + p * ohw;
    float* out = gx.p + p * ihw;
    for (int64_t i = 0; i < ohw; i++) {
      const int32_t at = ap[i];
      if (at >= 0 && at < ihw) out[at] += gp[i];
      else if (at >= ihw) bad.store(true, std::memory_order_relaxed);
    }
  });
  if (bad) throwRange("maxPool2dBackward: argmax holds an index outside the input plane");
  return undefinedValue(a.env());
}

#if defined(__GNUC__) || defined(__clang__)
/** L::n windows of setPlane2x2 at once: the four cells' values, interleaved back into the two rows. */
template <class L>
inline __attribute__((always_inline)) void set2x2xN(const float* gp, const int32_t* ap, int32_t ia, int32_t W, float* r0, float* r1) {
  typedef typename L::F F;
  typedef typename L::I I;
  F v;
  I at;
  std::memcpy(&v, gp, sizeof(F));
  std::memcpy(&at, ap, sizeof(F));
  at -= ia + L::even();  // the argmax's offset inside its window: 0, 1, W or W + 1
  const F zero = {};
  const F a = at == 0 ? v : zero, b = at == 1 ? v : zero, c = at == W ? v : zero, d = at == W + 1 ? v : zero;
  const F p0 = __builtin_shuffle(a, b, L::low()), p1 = __builtin_shuffle(a, b, L::high());
  const F q0 = __builtin_shuffle(c, d, L::low()), q1 = __builtin_shuffle(c, d, L::high());
  std::memcpy(r0, &p0, sizeof(F));
  std::memcpy(r0 + L::n, &p1, sizeof(F));
  std::memcpy(r1, &q0, sizeof(F));
  std::memcpy(r1 + L::n, &q1, sizeof(F));
}
#endif

/**
 * The 2×2 stride-2 case of maxPool2dBackwardSet: every input cell lies in at most one window, so
 * each is written once (the gradient at the window's argmax, 0 elsewhere) instead of zeroed and
 * then scattered into; cells of no window (an odd last row or column) get 0.
 */
SC_VECTOR_KERNEL(void, setPlane2x2, (const PoolGeom& g, const float* SC_RESTRICT gp, const int32_t* SC_RESTRICT ap, float* SC_RESTRICT out), (g, gp, ap, out)) {
  const int32_t W = static_cast<int32_t>(g.inW);
  const int64_t ow = g.outW;
  for (int64_t oy = 0; oy < g.outH; oy++) {
    float* r0 = out + 2 * oy * W;
    float* r1 = r0 + W;
    const int32_t i0 = static_cast<int32_t>(2 * oy * W);
#if defined(__GNUC__) || defined(__clang__)
    // An overlapping last block (blocksOf) rewrites a few cells with the same values.
    const auto block = [&](auto lanes) {
      blocksOf<decltype(lanes)>(ow, [&](int64_t o) {
        set2x2xN<decltype(lanes)>(gp + oy * ow + o, ap + oy * ow + o, i0 + static_cast<int32_t>(2 * o), W, r0 + 2 * o, r1 + 2 * o);
      });
      for (int64_t ix = 2 * ow; ix < W; ix++) r0[ix] = r1[ix] = 0.0f;
    };
    if (widestLanes(ow, block)) continue;
#endif
    for (int64_t ox = 0; ox < ow; ox++) {
      const float v = gp[oy * ow + ox];
      const int32_t at = ap[oy * ow + ox] - (i0 + static_cast<int32_t>(2 * ox));
      r0[2 * ox] = at == 0 ? v : 0.0f;
      r0[2 * ox + 1] = at == 1 ? v : 0.0f;
      r1[2 * ox] = at == W ? v : 0.0f;
      r1[2 * ox + 1] = at == W + 1 ? v : 0.0f;
    }
    for (int64_t ix = 2 * ow; ix < W; ix++) r0[ix] = r1[ix] = 0.0f;
  }
  for (int64_t iy = 2 * g.outH; iy < g.inH; iy++) std::memset(out + iy * W, 0, sizeof(float) * W);
}

// maxPool2dBackwardSet(geometry, gy, argmax, gx): gx = the gradient (every cell written, none read),
// for a gradient buffer nothing has accumulated into yet, which then needs no zeroing beforehand.
napi_value MaxPoolBackwardSetKernel(Args& a) {
  const PoolGeom g = poolGeom(a, 0);
  const F32 gy = a.f32(1, "gy"), gx = a.f32(3, "gx");
  const I32 arg = a.i32(2, "argmax");
  a.need(gy, g.ySize(), "gy");
  a.need(arg, g.ySize(), "argmax");
  a.need(gx, g.xSize(), "gx");
  const int64_t ihw = g.inH * g.inW, ohw = g.outH * g.outW;
  const bool twoByTwo = g.kH == 2 && g.kW == 2 && g.strideH == 2 && g.strideW == 2 && g.padH == 0 && g.padW == 0;
  std::atomic<bool> bad{false};
  perPlane(g, [&](int64_t p) {
    const float* gp = gy.p + p * ohw;
    const int32_t* ap = arg.p + p * ohw;
    float* out = gx.p + p * ihw;
    if (twoByTwo) {
      setPlane2x2(g, gp, ap, out);
      return;
    }
    std::memset(out, 0, sizeof(float) * ihw);
    for (int64_t i = 0; i < ohw; i++) {
      const int32_t at = ap[i];
      if (at >= 0 && at < ihw) out[at] += gp[i];
      else if (at >= ihw) bad.store(true, std::memory_order_relaxed);
    }
  });
  if (bad) throwRange("maxPool2dBackwardSet: argmax holds an index outside the input plane");
  return undefinedValue(a.env());
}

// avgPool2d(geometry, x, y)
napi_value AvgPoolKernel(Args& a) {
  const PoolGeom g = poolGeom(a, 0);
  const F32 x = a.f32(1, "x"), y = a.f32(2, "y");
  a.need(x, g.xSize(), "x");
  a.need(y, g.ySize(), "y");
  if (g.ySize() == 0) return undefinedValue(a.env());
#ifdef SC_HAVE_DNNL
  if (g_avgEngine == 0 && avgPoolDnnl(g, x.p, y.p)) return undefinedValue(a.env());
#endif
  const int64_t ihw = g.inH * g.inW, ohw = g.outH * g.outW;
  const std::vector<float> invW = inverseWidths(g);
  perPlane(g, [&](int64_t p) { avgPlane(g, x.p + p * ihw, y.p + p * ohw, invW.data()); });
  return undefinedValue(a.env());
}

// avgPool2dBackward(geometry, gy, gx)
napi_value AvgPoolBackwardKernel(Args& a) {
  const PoolGeom g = poolGeom(a, 0);
  const F32 gy = a.f32(1, "gy"), gx = a.f32(2, "gx");
  a.need(gy, g.ySize(), "gy");
  a.need(gx, g.xSize(), "gx");
  if (g.ySize() == 0) return undefinedValue(a.env());
#ifdef SC_HAVE_DNNL
  if (g_avgEngine == 0 && avgPoolBackwardDnnl(g, gy.p, gx.p)) return undefinedValue(a.env());
#endif
  const int64_t ihw = g.inH * g.inW, ohw = g.outH * g.outW;
  const std::vector<float> invW = inverseWidths(g);
  perPlane(g, [&](int64_t p) {
    static thread_local std::vector<float> share;
    share.resize(static_cast<size_t>(g.outW));
    avgBackwardPlane(g, gy.p + p * ohw, gx.p + p * ihw, invW.data(), share.data());
  });
  return undefinedValue(a.env());
}

/** Test/benchmark hook: setPoolEngine("auto" | "own"). */
napi_value SetPoolEngine(Args& a) {
  const std::string name = a.str(0, "engine");
  if (name != "auto" && name != "own") throwRange("setPoolEngine: engine '" + name + "' is unknown");
  g_avgEngine = name == "own" ? 1 : 0;
  return undefinedValue(a.env());
}

}  // namespace

void registerPool(napi_env env, napi_value exports) {
  defineFunction(env, exports, "maxPool2d", entry<MaxPoolKernel<false>>);
  defineFunction(env, exports, "maxPool2dRelu", entry<MaxPoolKernel<true>>);
  defineFunction(env, exports, "maxPool2dBackward", entry<MaxPoolBackwardKernel>);
  defineFunction(env, exports, "maxPool2dBackwardSet", entry<MaxPoolBackwardSetKernel>);
  defineFunction(env, exports, "avgPool2d", entry<AvgPoolKernel>);
  defineFunction(env, exports, "avgPool2dBackward", entry<AvgPoolBackwardKernel>);
  defineFunction(env, exports, "setPoolEngine", entry<SetPoolEngine>);
}

}  // namespace sc
