// The Llama family's kernels: RMSNorm, rotary position embeddings (Hugging Face's rotate_half
// layout) and the SiLU-gated product of a SwiGLU MLP. Row sums accumulate in double like
// norm.cc's; the per-element work is float in loops the compiler vectorises (SC_VECTOR_KERNEL
// compiles an AVX2+FMA twin; vexp is the vectorisable exp of vmath.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "llama_rows.h"
#include "napi_args.h"
#include "registry.h"
#include "simd.h"
#include "threads.h"
#include "vmath.h"

namespace sc {

SC_VECTOR_KERNEL(void, rmsNormRow, (const float* SC_RESTRICT x, const float* SC_RESTRICT w, int64_t cols, double eps, float* SC_RESTRICT y,
                float* invRms), (x, w, cols, eps, y, invRms)) {
  double q = 0;
#pragma omp simd reduction(+ : q)
  for (int64_t j = 0; j < cols; j++) q += static_cast<double>(x[j]) * x[j];
  const float inv = static_cast<float>(1.0 / std::sqrt(q / static_cast<double>(cols) + eps));
  *invRms = inv;
  for (int64_t j = 0; j < cols; j++) y[j] = x[j] * inv * w[j];
}

/**
 * Rows [lo, hi) of src [rows, 2h] turned by sign·angle(row mod t, i): dst = (or += with accumulate)
 * (a·c − b·s, b·c + a·s) for each pair (a, b) = (src[i], src[i + h]).
 */
SC_VECTOR_KERNEL(void, rotateRows, (const float* SC_RESTRICT src, const float* SC_RESTRICT cosT, const float* SC_RESTRICT sinT, int64_t t,
                int64_t h, float sign, bool accumulate, int64_t lo, int64_t hi, float* SC_RESTRICT dst), (src, cosT, sinT, t, h, sign, accumulate, lo, hi, dst)) {
  for (int64_t row = lo; row < hi; row++) {
    const float *c = cosT + (row % t) * h, *s = sinT + (row % t) * h;
    const float *a = src + row * 2 * h, *b = a + h;
    float *outLo = dst + row * 2 * h, *outHi = outLo + h;
    if (accumulate) {
      for (int64_t i = 0; i < h; i++) {
        const float sn = sign * s[i];
        outLo[i] += a[i] * c[i] - b[i] * sn;
        outHi[i] += b[i] * c[i] + a[i] * sn;
      }
    } else {
      for (int64_t i = 0; i < h; i++) {
        const float sn = sign * s[i];
        outLo[i] = a[i] * c[i] - b[i] * sn;
        outHi[i] = b[i] * c[i] + a[i] * sn;
      }
    }
  }
}

SC_VECTOR_KERNEL(void, siluMulRange, (const float* SC_RESTRICT gate, const float* SC_RESTRICT up, float* SC_RESTRICT out, int64_t lo,
                  int64_t hi), (gate, up, out, lo, hi)) {
  for (int64_t i = lo; i < hi; i++) out[i] = gate[i] / (1.0f + vexp(-gate[i])) * up[i];
}

namespace {

// Elements per thread before a loop forks, as elementwise.cc measured for streaming loops.
constexpr int64_t kGrain = 1 << 19;
// Row work per thread for the norms (a row reads x two or three times).
constexpr int64_t kRowGrain = 16384;

/** gx += inv · (gy·w − x̂ · mean(gy·w·x̂)) for one row. */
SC_VECTOR_KERNEL(void, rmsNormGradRow, (const float* SC_RESTRICT x, const float* SC_RESTRICT w, const float* SC_RESTRICT gy, float inv,
                    int64_t cols, float* SC_RESTRICT gx), (x, w, gy, inv, cols, gx)) {
  double dot = 0;
#pragma omp simd reduction(+ : dot)
  for (int64_t j = 0; j < cols; j++) dot += static_cast<double>(gy[j] * w[j]) * x[j];
  const float along = static_cast<float>(dot * inv / static_cast<double>(cols));
  const float inv2 = inv * inv;
  for (int64_t j = 0; j < cols; j++) gx[j] += inv * gy[j] * w[j] - inv2 * x[j] * along;
}

/** gw[j] += Σ_rows gy·x·inv over columns [lo, hi). */
SC_VECTOR_KERNEL(void, rmsNormGradWeight, (const float* x, const float* gy, const float* invRms, int64_t rows, int64_t cols, int64_t lo,
                       int64_t hi, float* gw), (x, gy, invRms, rows, cols, lo, hi, gw)) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols, *g = gy + r * cols;
    const float inv = invRms[r];
    for (int64_t j = lo; j < hi; j++) gw[j] += g[j] * xr[j] * inv;
  }
}

// rmsNorm(x, rows, cols, weight, eps, y, invRms)
napi_value RmsNormKernel(Args& a) {
  const F32 x = a.f32(0, "x");
  const int64_t rows = a.integer(1, "rows"), cols = a.integer(2, "cols");
  const F32 w = a.f32(3, "weight");
  const double eps = a.num(4, "eps");
  const F32 y = a.f32(5, "y"), invRms = a.f32(6, "invRms");
  a.need(x, rows * cols, "x");
  a.need(y, rows * cols, "y");
  a.need(w, cols, "weight");
  a.need(invRms, rows, "invRms");
  if (cols == 0) return undefinedValue(a.env());
  parallelRange(rows, std::max<int64_t>(1, kRowGrain / cols), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) rmsNormRow(x.p + r * cols, w.p, cols, eps, y.p + r * cols, invRms.p + r);
  });
  return undefinedValue(a.env());
}

// rmsNormBackward(x, rows, cols, weight, invRms, gy, gx | null, gWeight | null)
napi_value RmsNormBackwardKernel(Args& a) {
  const F32 x = a.f32(0, "x");
  const int64_t rows = a.integer(1, "rows"), cols = a.integer(2, "cols");
  const F32 w = a.f32(3, "weight"), invRms = a.f32(4, "invRms"), gy = a.f32(5, "gy");
  const F32 gx = a.f32OrNull(6, "gx"), gw = a.f32OrNull(7, "gWeight");
  a.need(x, rows * cols, "x");
  a.need(gy, rows * cols, "gy");
  a.need(w, cols, "weight");
  a.need(invRms, rows, "invRms");
  if (gx.p) a.need(gx, rows * cols, "gx");
  if (gw.p) a.need(gw, cols, "gWeight");
  if (cols == 0) return undefinedValue(a.env());
  if (gx.p) {
    parallelRange(rows, std::max<int64_t>(1, kRowGrain / cols), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; r++) {
        rmsNormGradRow(x.p + r * cols, w.p, gy.p + r * cols, invRms.p[r], cols, gx.p + r * cols);
      }
    });
  }
  // Column ranges across threads: no shared accumulators, the same bits at any thread count.
  if (gw.p) {
    parallelRange(cols, std::max<int64_t>(16, kRowGrain / std::max<int64_t>(rows, 1)), [&](int64_t lo, int64_t hi) {
      rmsNormGradWeight(x.p, gy.p, invRms.p, rows, cols, lo, hi, gw.p);
    });
  }
  return undefinedValue(a.env());
}

void rotaryCall(Args& a, float sign, bool accumulate) {
  const F32 src = a.f32(0, "x"), cosT = a.f32(1, "cos"), sinT = a.f32(2, "sin");
  const int64_t slices = a.integer(3, "slices"), t = a.integer(4, "t"), d = a.integer(5, "d");
  const F32 dst = a.f32(6, accumulate ? "gx" : "out");
  if (d % 2 != 0) throwRange(std::string(a.fn()) + ": d must be even, got " + std::to_string(d));
  const int64_t rows = slices * t, h = d / 2;
  a.need(src, rows * d, "x");
  a.need(dst, rows * d, accumulate ? "gx" : "out");
  a.need(cosT, t * h, "cos");
  a.need(sinT, t * h, "sin");
  if (d == 0) return;
  parallelRange(rows, std::max<int64_t>(1, kGrain / d), [&](int64_t lo, int64_t hi) {
    rotateRows(src.p, cosT.p, sinT.p, t, h, sign, accumulate, lo, hi, dst.p);
  });
}

// rotary(x, cos, sin, slices, t, d, out)
napi_value RotaryKernel(Args& a) {
  rotaryCall(a, 1.0f, false);
  return undefinedValue(a.env());
}

// rotaryBackward(gy, cos, sin, slices, t, d, gx): the inverse rotation, accumulated.
napi_value RotaryBackwardKernel(Args& a) {
  rotaryCall(a, -1.0f, true);
  return undefinedValue(a.env());
}

SC_VECTOR_KERNEL(void, siluMulGradRange, (const float* SC_RESTRICT gate, const float* SC_RESTRICT up, const float* SC_RESTRICT gy,
                      float* SC_RESTRICT gGate, float* SC_RESTRICT gUp, int64_t lo, int64_t hi), (gate, up, gy, gGate, gUp, lo, hi)) {
  if (gGate && gUp) {
    for (int64_t i = lo; i < hi; i++) {
      const float g = gate[i], s = 1.0f / (1.0f + vexp(-g));
      gGate[i] += gy[i] * up[i] * s * (1.0f + g * (1.0f - s));
      gUp[i] += gy[i] * g * s;
    }
  } else if (gGate) {
    for (int64_t i = lo; i < hi; i++) {
      const float g = gate[i], s = 1.0f / (1.0f + vexp(-g));
      gGate[i] += gy[i] * up[i] * s * (1.0f + g * (1.0f - s));
    }
  } else if (gUp) {
    for (int64_t i = lo; i < hi; i++) {
      const float g = gate[i], s = 1.0f / (1.0f + vexp(-g));
      gUp[i] += gy[i] * g * s;  // as the two-gradient loop rounds it: freezing one changes no bit of the other
    }
  }
}

// siluMul(gate, up, out)
napi_value SiluMulKernel(Args& a) {
  const F32 gate = a.f32(0, "gate"), up = a.f32(1, "up"), out = a.f32(2, "out");
  const int64_t n = static_cast<int64_t>(out.n);
  a.need(gate, n, "gate");
  a.need(up, n, "up");
  parallelRange(n, kGrain, [&](int64_t lo, int64_t hi) { siluMulRange(gate.p, up.p, out.p, lo, hi); });
  return undefinedValue(a.env());
}

// siluMulBackward(gate, up, gy, gGate | null, gUp | null)
napi_value SiluMulBackwardKernel(Args& a) {
  const F32 gate = a.f32(0, "gate"), up = a.f32(1, "up"), gy = a.f32(2, "gy");
  const F32 gGate = a.f32OrNull(3, "gGate"), gUp = a.f32OrNull(4, "gUp");
  const int64_t n = static_cast<int64_t>(gy.n);
  a.need(gate, n, "gate");
  a.need(up, n, "up");
  if (gGate.p) a.need(gGate, n, "gGate");
  if (gUp.p) a.need(gUp, n, "gUp");
  parallelRange(n, kGrain, [&](int64_t lo, int64_t hi) { siluMulGradRange(gate.p, up.p, gy.p, gGate.p, gUp.p, lo, hi); });
  return undefinedValue(a.env());
}

}  // namespace

void registerLlama(napi_env env, napi_value exports) {
  defineFunction(env, exports, "rmsNorm", entry<RmsNormKernel>);
  defineFunction(env, exports, "rmsNormBackward", entry<RmsNormBackwardKernel>);
  defineFunction(env, exports, "rotary", entry<RotaryKernel>);
  defineFunction(env, exports, "rotaryBackward", entry<RotaryBackwardKernel>);
  defineFunction(env, exports, "siluMul", entry<SiluMulKernel>);
  defineFunction(env, exports, "siluMulBackward", entry<SiluMulBackwardKernel>);
}

}  // namespace sc
