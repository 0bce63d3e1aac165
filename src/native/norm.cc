// Batch and layer normalisation. Statistics accumulate in double (two passes: mean, then squared
// deviations) so large reductions keep their precision; the per-element work is float.
#include <vector>
#include <cmath>

#include "napi_args.h"
#include "registry.h"
#include "simd.h"
#include "threads.h"

namespace sc {
namespace {

constexpr int64_t kGrain = 16384;

struct BnDims {
  int64_t outer, C, inner;
  int64_t total() const { return outer * C * inner; }
};

BnDims bnDims(Args& a, size_t i) {
  return BnDims{a.integer(i, "outer"), a.integer(i + 1, "C"), a.integer(i + 2, "inner")};
}

/** Channels split across threads; each channel touches outer·inner elements. */
template <class Fn>
void perChannel(const BnDims& d, Fn&& fn) {
  const int64_t per = std::max<int64_t>(1, d.outer * d.inner);
  parallelRange(d.C, std::max<int64_t>(1, kGrain / per), [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; c++) fn(c);
  });
}

void bnStats(const BnDims& d, const float* x, int64_t c, double* mu, double* sq) {
  double s = 0;
  for (int64_t o = 0; o < d.outer; o++) {
    const float* p = x + (o * d.C + c) * d.inner;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < d.inner; i++) s += p[i];
  }
  const double m = s / static_cast<double>(d.outer * d.inner);
  double q = 0;
  for (int64_t o = 0; o < d.outer; o++) {
    const float* p = x + (o * d.C + c) * d.inner;
#pragma omp simd reduction(+ : q)
    for (int64_t i = 0; i < d.inner; i++) {
      const double dv = p[i] - m;
      q += dv * dv;
    }
  }
  *mu = m;
  *sq = q;
}

// batchNorm(x, outer, C, inner, gamma, beta, runningMean, runningVar, training, momentum, eps, y, mean, invStd[, relu])
napi_value BatchNormKernel(Args& a) {
  const F32 x = a.f32(0, "x");
  const BnDims d = bnDims(a, 1);
  const F32 gamma = a.f32(4, "gamma"), beta = a.f32(5, "beta"), rm = a.f32(6, "runningMean"),
            rv = a.f32(7, "runningVar");
  const bool training = a.flag(8);
  const double momentum = a.num(9, "momentum"), eps = a.num(10, "eps");
  const F32 y = a.f32(11, "y"), mean = a.f32(12, "mean"), invStd = a.f32(13, "invStd");
  const bool relu = a.argCount() > 14 && a.flag(14);
  a.need(x, d.total(), "x");
  a.need(y, d.total(), "y");
  a.need(gamma, d.C, "gamma");
  a.need(beta, d.C, "beta");
  a.need(rm, d.C, "runningMean");
  a.need(rv, d.C, "runningVar");
  a.need(mean, d.C, "mean");
  a.need(invStd, d.C, "invStd");
  const int64_t m = d.outer * d.inner;
  perChannel(d, [&](int64_t c) {
    if (training) {
      double mu, sq;
      bnStats(d, x.p, c, &mu, &sq);
      const double var = m > 0 ? sq / static_cast<double>(m) : 0.0;
      const double unbiased = m > 1 ? sq / static_cast<double>(m - 1) : var;
      mean.p[c] = static_cast<float>(mu);
      invStd.p[c] = static_cast<float>(1.0 / std::sqrt(var + eps));
      rm.p[c] = static_cast<float>((1 - momentum) * rm.p[c] + momentum * mu);
      rv.p[c] = static_cast<float>((1 - momentum) * rv.p[c] + momentum * unbiased);
    } else {
      mean.p[c] = rm.p[c];
      invStd.p[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(rv.p[c]) + eps));
    }
    const float mu = mean.p[c], scale = invStd.p[c] * gamma.p[c], shift = beta.p[c];
    for (int64_t o = 0; o < d.outer; o++) {
      const int64_t base = (o * d.C + c) * d.inner;
      const float* xp = x.p + base;
      float* yp = y.p + base;
      if (relu) {
        for (int64_t i = 0; i < d.inner; i++) {
          const float v = (xp[i] - mu) * scale + shift;
          yp[i] = v > 0 ? v : 0.0f;  // as the relu kernel: NaN → 0
        }
      } else {
        for (int64_t i = 0; i < d.inner; i++) yp[i] = (xp[i] - mu) * scale + shift;
      }
    }
  });
  return undefinedValue(a.env());
}

/**
 * One channel of batch-norm's backward. gy's mask (a fused relu: only where reluY > 0) is a select
 * on values loaded unconditionally, so both loops vectorise: written as `reluY > 0 ? gy : 0` the
 * load of gy was conditional and GCC kept a branch per element, which mispredicts on relu's
 * half-zero output (10× the unmasked backward's time on ResNet's shapes).
 */
/**
 * Row `base` of the relu mask as float32: reluY's own, or reluYBf16's widened (exactly) into `row`,
 * so one float loop serves both (a bf16 copy of the output has the same cells > 0, but for
 * denormals, which the forward flushes to zero here anyway: denormals.h).
 */
static const float* maskRow(const float* reluY, const uint16_t* reluYBf16, int64_t base, int64_t n, std::vector<float>& row) {
  if (reluY) return reluY + base;
  uint32_t* bits = reinterpret_cast<uint32_t*>(row.data());
  for (int64_t i = 0; i < n; i++) bits[i] = static_cast<uint32_t>(reluYBf16[base + i]) << 16;
  return row.data();
}

SC_VECTOR_KERNEL(void, bnBackwardChannel, (const BnDims& d, int64_t c, const float* SC_RESTRICT x, const float* gamma, const float* mean,
                       const float* invStd, const float* SC_RESTRICT gy, const float* SC_RESTRICT reluY,
                       const uint16_t* reluYBf16, bool setGx, float* SC_RESTRICT gx, float* gGamma, float* gBeta), (d, c, x, gamma, mean, invStd, gy, reluY, reluYBf16, setGx, gx, gGamma, gBeta)) {
  const float mu = mean[c], is = invStd[c];
  const double m = static_cast<double>(d.outer * d.inner);
  double sumG = 0, sumGX = 0;
  const bool masked = reluY || reluYBf16;
  std::vector<float> row(reluYBf16 ? d.inner : 0);
  for (int64_t o = 0; o < d.outer; o++) {
    const int64_t base = (o * d.C + c) * d.inner;
    const float *g = gy + base, *xp = x + base;
    if (masked) {
      const float* yp = maskRow(reluY, reluYBf16, base, d.inner, row);
#pragma omp simd reduction(+ : sumG, sumGX)
      for (int64_t i = 0; i < d.inner; i++) {
        const float gv = g[i];
        const float gi = yp[i] > 0 ? gv : 0.0f;
        sumG += gi;
        sumGX += static_cast<double>(gi) * ((xp[i] - mu) * is);
      }
      continue;
    }
#pragma omp simd reduction(+ : sumG, sumGX)
    for (int64_t i = 0; i < d.inner; i++) {
      sumG += g[i];
      sumGX += static_cast<double>(g[i]) * ((xp[i] - mu) * is);
    }
  }
  gGamma[c] += static_cast<float>(sumGX);
  gBeta[c] += static_cast<float>(sumG);
  if (m == 0) return;
  // gx = gamma·is/m · (m·gy − ΣG − x̂·ΣGX̂)
  const float k = static_cast<float>(gamma[c] * is / m), mf = static_cast<float>(m);
  const float sg = static_cast<float>(sumG), sgx = static_cast<float>(sumGX);
  for (int64_t o = 0; o < d.outer; o++) {
    const int64_t base = (o * d.C + c) * d.inner;
    const float *g = gy + base, *xp = x + base;
    float* out = gx + base;
    if (masked) {
      const float* yp = maskRow(reluY, reluYBf16, base, d.inner, row);
      if (setGx) {
#pragma omp simd
        for (int64_t i = 0; i < d.inner; i++) {
          const float gv = g[i];
          out[i] = k * (mf * (yp[i] > 0 ? gv : 0.0f) - sg - (xp[i] - mu) * is * sgx);
        }
      } else {
#pragma omp simd
        for (int64_t i = 0; i < d.inner; i++) {
          const float gv = g[i];
          out[i] += k * (mf * (yp[i] > 0 ? gv : 0.0f) - sg - (xp[i] - mu) * is * sgx);
        }
      }
    } else if (setGx) {
#pragma omp simd
      for (int64_t i = 0; i < d.inner; i++) out[i] = k * (mf * g[i] - sg - (xp[i] - mu) * is * sgx);
    } else {
#pragma omp simd
      for (int64_t i = 0; i < d.inner; i++) out[i] += k * (mf * g[i] - sg - (xp[i] - mu) * is * sgx);
    }
  }
}

// batchNormBackward(x, outer, C, inner, gamma, mean, invStd, gy, gx, gGamma, gBeta[, setGx[, reluY[, reluYBf16]]]):
// with setGx, gx is overwritten instead of accumulated; with reluY (the output of a fused batch-norm
// + relu), gy counts only where reluY > 0; reluYBf16 (a Uint16Array) is the same mask from a bf16
// copy of that output (ops/norm.ts: the output was handed over to a bf16 conv).
napi_value BatchNormBackwardKernel(Args& a) {
  const F32 x = a.f32(0, "x");
  const BnDims d = bnDims(a, 1);
  const F32 gamma = a.f32(4, "gamma"), mean = a.f32(5, "mean"), invStd = a.f32(6, "invStd"),
            gy = a.f32(7, "gy"), gx = a.f32(8, "gx"), gGamma = a.f32(9, "gGamma"), gBeta = a.f32(10, "gBeta");
  a.need(x, d.total(), "x");
  a.need(gy, d.total(), "gy");
  a.need(gx, d.total(), "gx");
  a.need(gamma, d.C, "gamma");
  a.need(mean, d.C, "mean");
  a.need(invStd, d.C, "invStd");
  a.need(gGamma, d.C, "gGamma");
  a.need(gBeta, d.C, "gBeta");
  const bool setGx = a.argCount() > 11 && a.flag(11);
  const F32 reluY = a.argCount() > 12 ? a.f32OrNull(12, "reluY") : F32{};
  if (reluY.p) a.need(reluY, d.total(), "reluY");
  const U16 reluYBf16 = a.argCount() > 13 ? a.u16OrNull(13, "reluYBf16") : U16{};
  if (reluYBf16.p) a.need(reluYBf16, d.total(), "reluYBf16");
  perChannel(d, [&](int64_t c) {
    bnBackwardChannel(d, c, x.p, gamma.p, mean.p, invStd.p, gy.p, reluY.p, reluYBf16.p, setGx, gx.p, gGamma.p, gBeta.p);
  });
  return undefinedValue(a.env());
}

// layerNorm(x, rows, cols, gamma, beta, eps, y, mean, invStd)
napi_value LayerNormKernel(Args& a) {
  const F32 x = a.f32(0, "x");
  const int64_t rows = a.integer(1, "rows"), cols = a.integer(2, "cols");
  const F32 gamma = a.f32(3, "gamma"), beta = a.f32(4, "beta");
  const double eps = a.num(5, "eps");
  const F32 y = a.f32(6, "y"), mean = a.f32(7, "mean"), invStd = a.f32(8, "invStd");
  a.need(x, rows * cols, "x");
  a.need(y, rows * cols, "y");
  a.need(gamma, cols, "gamma");
  a.need(beta, cols, "beta");
  a.need(mean, rows, "mean");
  a.need(invStd, rows, "invStd");
  if (cols == 0) return undefinedValue(a.env());
  parallelRange(rows, std::max<int64_t>(1, kGrain / cols), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) {
      const float* xr = x.p + r * cols;
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j < cols; j++) s += xr[j];
      const double mu = s / static_cast<double>(cols);
      double q = 0;
#pragma omp simd reduction(+ : q)
      for (int64_t j = 0; j < cols; j++) q += (xr[j] - mu) * (xr[j] - mu);
      const float is = static_cast<float>(1.0 / std::sqrt(q / static_cast<double>(cols) + eps));
      const float muf = static_cast<float>(mu);
      mean.p[r] = muf;
      invStd.p[r] = is;
      float* yr = y.p + r * cols;
      for (int64_t j = 0; j < cols; j++) yr[j] = (xr[j] - muf) * is * gamma.p[j] + beta.p[j];
    }
  });
  return undefinedValue(a.env());
}

// layerNormBackward(x, rows, cols, gamma, mean, invStd, gy, gx, gGamma, gBeta)
napi_value LayerNormBackwardKernel(Args& a) {
  const F32 x = a.f32(0, "x");
  const int64_t rows = a.integer(1, "rows"), cols = a.integer(2, "cols");
  const F32 gamma = a.f32(3, "gamma"), mean = a.f32(4, "mean"), invStd = a.f32(5, "invStd"),
            gy = a.f32(6, "gy"), gx = a.f32(7, "gx"), gGamma = a.f32(8, "gGamma"), gBeta = a.f32(9, "gBeta");
  a.need(x, rows * cols, "x");
  a.need(gy, rows * cols, "gy");
  a.need(gx, rows * cols, "gx");
  a.need(gamma, cols, "gamma");
  a.need(gGamma, cols, "gGamma");
  a.need(gBeta, cols, "gBeta");
  a.need(mean, rows, "mean");
  a.need(invStd, rows, "invStd");
  if (cols == 0) return undefinedValue(a.env());
  // Input gradient, row by row.
  parallelRange(rows, std::max<int64_t>(1, kGrain / cols), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) {
      const float *xr = x.p + r * cols, *g = gy.p + r * cols;
      const float mu = mean.p[r], is = invStd.p[r];
      double sumG = 0, sumGX = 0;
#pragma omp simd reduction(+ : sumG, sumGX)
      for (int64_t j = 0; j < cols; j++) {
        const float gg = g[j] * gamma.p[j];
        sumG += gg;
        sumGX += static_cast<double>(gg) * ((xr[j] - mu) * is);
      }
      const float k = is / static_cast<float>(cols), n = static_cast<float>(cols);
      const float sg = static_cast<float>(sumG), sgx = static_cast<float>(sumGX);
      float* out = gx.p + r * cols;
      for (int64_t j = 0; j < cols; j++) out[j] += k * (n * g[j] * gamma.p[j] - sg - (xr[j] - mu) * is * sgx);
    }
  });
  // Parameter gradients, column ranges across threads: no shared accumulators, deterministic.
  parallelRange(cols, std::max<int64_t>(16, kGrain / std::max<int64_t>(rows, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = 0; r < rows; r++) {
      const float *xr = x.p + r * cols, *g = gy.p + r * cols;
      const float mu = mean.p[r], is = invStd.p[r];
      for (int64_t j = lo; j < hi; j++) {
        gGamma.p[j] += g[j] * ((xr[j] - mu) * is);
        gBeta.p[j] += g[j];
      }
    }
  });
  return undefinedValue(a.env());
}

}  // namespace

void registerNorm(napi_env env, napi_value exports) {
  defineFunction(env, exports, "batchNorm", entry<BatchNormKernel>);
  defineFunction(env, exports, "batchNormBackward", entry<BatchNormBackwardKernel>);
  defineFunction(env, exports, "layerNorm", entry<LayerNormKernel>);
  defineFunction(env, exports, "layerNormBackward", entry<LayerNormBackwardKernel>);
}

}  // namespace sc
