// Elementwise kernels: plain loops the compiler vectorises, split across threads when large.
// Float math is single precision like torch's CPU kernels; reductions accumulate in double.
#include <cmath>
#include <cstdint>
#include <string>

#include "napi_args.h"
#include "registry.h"
#include "simd.h"
#include "strided.h"
#include "threads.h"
#include "vmath.h"

namespace sc {
namespace {

// Operation codes: the TS layer maps UnaryOp / BinaryOp names to these indices.
enum Unary { NEG, EXP, LOG, SQRT, RELU, GELU, TANH, SIGMOID, ABS, GELU_ERF, UNARY_COUNT };
enum Binary { ADD, SUB, MUL, DIV, POW, MAX, MIN, BINARY_COUNT };

constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kGeluA = 0.044715f;
constexpr float kSqrt1_2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;
// Elements per thread before a loop forks (it forks from 2 × kGrain). bench:threads on the quiet
// 2-core machine: a second thread starts to win from ~1M floats (262K: 0.49–0.80×; 1M: 1.32–1.48×).
constexpr int64_t kGrain = 1 << 19;
// sumSquares adds fixed chunks of this many floats (the chunking, not the threads, fixes its bits).
constexpr int64_t kSumChunk = 4 * 32768;

/** Math.pow's edge cases, which differ from C's powf: pow(x, NaN) and pow(±1, ±inf) are NaN. */
inline float jsPow(float a, float b) {
  if (std::isnan(b) || (std::fabs(a) == 1.0f && std::isinf(b))) return NAN;
  return std::pow(a, b);
}

SC_VECTOR_KERNEL(void, unaryRange, (int op, const float* SC_RESTRICT x, float* out, int64_t lo, int64_t hi), (op, x, out, lo, hi)) {
  switch (op) {
    case NEG: for (int64_t i = lo; i < hi; i++) out[i] = -x[i]; break;
    case EXP: for (int64_t i = lo; i < hi; i++) out[i] = vexp(x[i]); break;
    case LOG: for (int64_t i = lo; i < hi; i++) out[i] = std::log(x[i]); break;
    case SQRT: for (int64_t i = lo; i < hi; i++) out[i] = std::sqrt(x[i]); break;
    case RELU: for (int64_t i = lo; i < hi; i++) out[i] = x[i] > 0 ? x[i] : 0.0f; break;
    case TANH: for (int64_t i = lo; i < hi; i++) out[i] = std::tanh(x[i]); break;
    case SIGMOID: for (int64_t i = lo; i < hi; i++) out[i] = 1.0f / (1.0f + vexp(-x[i])); break;
    case ABS: for (int64_t i = lo; i < hi; i++) out[i] = std::fabs(x[i]); break;
    case GELU:
      // 0.5·v·(1 + tanh(u)) = v·sigmoid(2u): one vectorised exp, no cancellation for u << 0.
      for (int64_t i = lo; i < hi; i++) {
        const float v = x[i];
        out[i] = v / (1.0f + vexp(-2.0f * kGeluC * (v + kGeluA * v * v * v)));
      }
      break;
    case GELU_ERF:
      for (int64_t i = lo; i < hi; i++) out[i] = 0.5f * x[i] * verfc(-x[i] * kSqrt1_2);  // erfc: no cancellation in the lower tail
      break;
  }
}

SC_VECTOR_KERNEL(void, unaryBackwardRange, (int op, const float* x, const float* y, const float* gy, float* gx, int64_t lo, int64_t hi), (op, x, y, gy, gx, lo, hi)) {
  switch (op) {
    case NEG: for (int64_t i = lo; i < hi; i++) gx[i] -= gy[i]; break;
    case EXP: for (int64_t i = lo; i < hi; i++) gx[i] += gy[i] * y[i]; break;
    case LOG: for (int64_t i = lo; i < hi; i++) gx[i] += gy[i] / x[i]; break;
    case SQRT: for (int64_t i = lo; i < hi; i++) gx[i] += gy[i] * 0.5f / y[i]; break;
    case RELU: for (int64_t i = lo; i < hi; i++) gx[i] += x[i] > 0 ? gy[i] : 0.0f; break;
    case TANH: for (int64_t i = lo; i < hi; i++) gx[i] += gy[i] * (1.0f - y[i] * y[i]); break;
    case SIGMOID: for (int64_t i = lo; i < hi; i++) gx[i] += gy[i] * y[i] * (1.0f - y[i]); break;
    case ABS:
      for (int64_t i = lo; i < hi; i++) gx[i] += x[i] > 0 ? gy[i] : x[i] < 0 ? -gy[i] : 0.0f;
      break;
    case GELU:
      // With e = exp(−2u), s = sigmoid(2u) = 1/(1 + e) = (1 + tanh u)/2: d/dv = s + 2·v·s·(1 − s)·u'(v),
      // and s·(1 − s) = (e·s)·s (1 − s would cancel where s is near 1). The exponent is capped at 80
      // so e·s stays finite (e = inf would give inf·0) where s underflows anyway.
      for (int64_t i = lo; i < hi; i++) {
        const float v = x[i];
        const float arg = -2.0f * kGeluC * (v + kGeluA * v * v * v);
        const float e = vexp(arg < 80.0f ? arg : 80.0f);
        const float s = 1.0f / (1.0f + e);
        gx[i] += gy[i] * (s + 2.0f * v * (e * s) * s * kGeluC * (1.0f + 3.0f * kGeluA * v * v));
      }
      break;
    case GELU_ERF:
      for (int64_t i = lo; i < hi; i++) {
        const float v = x[i];
        gx[i] += gy[i] * (0.5f * verfc(-v * kSqrt1_2) + v * kInvSqrt2Pi * vexp(-0.5f * v * v));
      }
      break;
  }
}

/** One row of a broadcasting binary op; the common stride patterns get their own loops. */
template <class F>
inline void binaryRow(F f, const float* a, int64_t sa, const float* b, int64_t sb, float* o, int64_t n) {
  if (sa == 1 && sb == 1) for (int64_t j = 0; j < n; j++) o[j] = f(a[j], b[j]);
  else if (sa == 1 && sb == 0) { const float bv = *b; for (int64_t j = 0; j < n; j++) o[j] = f(a[j], bv); }
  else if (sa == 0 && sb == 1) { const float av = *a; for (int64_t j = 0; j < n; j++) o[j] = f(av, b[j]); }
  else for (int64_t j = 0; j < n; j++) o[j] = f(a[j * sa], b[j * sb]);
}

template <class F>
void binaryRows(F f, const StridedView& v, const float* a, const float* b, float* o, int64_t lo, int64_t hi) {
  const int last = v.nd - 1;
  forEachRow(v, lo, hi, [&](const int64_t* off, int64_t n) {
    binaryRow(f, a + off[0], v.stride[0][last], b + off[1], v.stride[1][last], o + off[2], n);
  });
}

SC_VECTOR_KERNEL(void, binaryRange, (int op, const StridedView& v, const float* a, const float* b, float* o, int64_t lo, int64_t hi), (op, v, a, b, o, lo, hi)) {
  switch (op) {
    case ADD: binaryRows([](float x, float y) { return x + y; }, v, a, b, o, lo, hi); break;
    case SUB: binaryRows([](float x, float y) { return x - y; }, v, a, b, o, lo, hi); break;
    case MUL: binaryRows([](float x, float y) { return x * y; }, v, a, b, o, lo, hi); break;
    case DIV: binaryRows([](float x, float y) { return x / y; }, v, a, b, o, lo, hi); break;
    case POW: binaryRows([](float x, float y) { return jsPow(x, y); }, v, a, b, o, lo, hi); break;
    case MAX: binaryRows([](float x, float y) { return x > y ? x : y; }, v, a, b, o, lo, hi); break;
    case MIN: binaryRows([](float x, float y) { return x < y ? x : y; }, v, a, b, o, lo, hi); break;
  }
}

int opCode(const Args& a, size_t i, int count) {
  return static_cast<int>(a.integer(i, "op", 0, count - 1));
}

// unary(op, x, out)
napi_value UnaryKernel(Args& a) {
  const int op = opCode(a, 0, UNARY_COUNT);
  const F32 x = a.f32(1, "x"), out = a.f32(2, "out");
  a.need(x, out.n, "x");
  parallelRange(out.n, kGrain, [&](int64_t lo, int64_t hi) { unaryRange(op, x.p, out.p, lo, hi); });
  return undefinedValue(a.env());
}

// unaryBackward(op, x, y, gy, gx)
napi_value UnaryBackwardKernel(Args& a) {
  const int op = opCode(a, 0, UNARY_COUNT);
  const F32 x = a.f32(1, "x"), y = a.f32(2, "y"), gy = a.f32(3, "gy"), gx = a.f32(4, "gx");
  a.need(x, gx.n, "x");
  a.need(y, gx.n, "y");
  a.need(gy, gx.n, "gy");
  parallelRange(gx.n, kGrain, [&](int64_t lo, int64_t hi) { unaryBackwardRange(op, x.p, y.p, gy.p, gx.p, lo, hi); });
  return undefinedValue(a.env());
}

// binary(op, a, b, out, dims) with dims = [nd, shape..., aStrides..., bStrides...]
napi_value BinaryKernel(Args& a) {
  const int op = opCode(a, 0, BINARY_COUNT);
  const F32 x = a.f32(1, "a"), y = a.f32(2, "b"), out = a.f32(3, "out");
  const double* d = a.ints(4, "dims", 1);
  const int nd = static_cast<int>(d[0]);
  if (nd < 0 || nd > kMaxDims) throwRange("binary: at most 16 dimensions");
  d = a.ints(4, "dims", 1 + 3 * nd);
  StridedView v;
  v.nd = nd;
  v.ops = 3;
  int64_t contiguous = 1;
  for (int k = nd - 1; k >= 0; k--) {
    v.shape[k] = static_cast<int64_t>(d[1 + k]);
    if (v.shape[k] < 0) throwRange("binary: negative dimension");
    v.stride[0][k] = static_cast<int64_t>(d[1 + nd + k]);
    v.stride[1][k] = static_cast<int64_t>(d[1 + 2 * nd + k]);
    v.stride[2][k] = contiguous;
    contiguous *= v.shape[k];
  }
  const int64_t total = v.total();
  if (total == 0) return undefinedValue(a.env());
  a.need(out, total, "out");
  coalesce(v);
  checkExtent(a, v, 0, 0, x.n, "a");
  checkExtent(a, v, 1, 0, y.n, "b");
  if (v.nd == 1 && v.shape[0] > 1) {
    // One long row (the contiguous or plain-broadcast case): split the row itself across threads.
    const int64_t sa = v.stride[0][0], sb = v.stride[1][0];
    parallelRange(total, kGrain, [&](int64_t lo, int64_t hi) {
      StridedView part = v;
      part.shape[0] = hi - lo;
      binaryRange(op, part, x.p + lo * sa, y.p + lo * sb, out.p + lo, 0, 1);
    });
    return undefinedValue(a.env());
  }
  const int64_t rows = total / v.shape[v.nd - 1];
  const int64_t grain = std::max<int64_t>(1, kGrain / v.shape[v.nd - 1]);
  parallelRange(rows, grain, [&](int64_t lo, int64_t hi) { binaryRange(op, v, x.p, y.p, out.p, lo, hi); });
  return undefinedValue(a.env());
}

// affine(x, scale, shift, out)
napi_value AffineKernel(Args& a) {
  const F32 x = a.f32(0, "x"), out = a.f32(3, "out");
  const float scale = static_cast<float>(a.num(1, "scale")), shift = static_cast<float>(a.num(2, "shift"));
  a.need(x, out.n, "x");
  parallelRange(out.n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) out.p[i] = x.p[i] * scale + shift;
  });
  return undefinedValue(a.env());
}

// powScalar(x, p, out)
napi_value PowScalarKernel(Args& a) {
  const F32 x = a.f32(0, "x"), out = a.f32(2, "out");
  const float p = static_cast<float>(a.num(1, "p"));
  a.need(x, out.n, "x");
  parallelRange(out.n, kGrain, [&](int64_t lo, int64_t hi) {
    if (p == 2) for (int64_t i = lo; i < hi; i++) out.p[i] = x.p[i] * x.p[i];
    else for (int64_t i = lo; i < hi; i++) out.p[i] = jsPow(x.p[i], p);
  });
  return undefinedValue(a.env());
}

// axpy(alpha, x, y): y += alpha x
napi_value AxpyKernel(Args& a) {
  const float alpha = static_cast<float>(a.num(0, "alpha"));
  const F32 x = a.f32(1, "x"), y = a.f32(2, "y");
  a.need(x, y.n, "x");
  parallelRange(y.n, kGrain, [&](int64_t lo, int64_t hi) {
    float* SC_RESTRICT yp = y.p;
    const float* SC_RESTRICT xp = x.p;
    for (int64_t i = lo; i < hi; i++) yp[i] += alpha * xp[i];
  });
  return undefinedValue(a.env());
}

// addInto(y, x): y += x on the calling thread only. The all-reduce sums received gradients with it
// beside the event loop's other work; forking there cost 12 ms for 128K floats on an oversubscribed
// 2-core machine (the team waited for a descheduled thread), 500x the serial loop.
napi_value AddIntoKernel(Args& a) {
  const F32 y = a.f32(0, "y"), x = a.f32(1, "x");
  a.need(x, y.n, "x");
  float* SC_RESTRICT yp = y.p;
  const float* SC_RESTRICT xp = x.p;
  for (int64_t i = 0; i < y.n; i++) yp[i] += xp[i];
  return undefinedValue(a.env());
}

// fill(x, value)
napi_value FillKernel(Args& a) {
  const F32 x = a.f32(0, "x");
  const float v = static_cast<float>(a.num(1, "value"));
  parallelRange(x.n, 4 * kGrain, [&](int64_t lo, int64_t hi) { std::fill(x.p + lo, x.p + hi, v); });
  return undefinedValue(a.env());
}

double sumSquaresRange(const float* x, int64_t lo, int64_t hi) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = lo; i < hi; i++) s += static_cast<double>(x[i]) * x[i];
  return s;
}

// sumSquares(x) → number
napi_value SumSquaresKernel(Args& a) {
  const F32 x = a.f32(0, "x");
  double parts[64] = {0};
  const int64_t chunks = std::min<int64_t>(64, std::max<int64_t>(1, x.n / kSumChunk));
  // Fixed chunking (independent of the thread count) keeps the result bit-identical across runs.
  parallelRange(chunks, kGrain / kSumChunk, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; c++) parts[c] = sumSquaresRange(x.p, x.n * c / chunks, x.n * (c + 1) / chunks);
  });
  double s = 0;
  for (int64_t c = 0; c < chunks; c++) s += parts[c];
  return numberValue(a.env(), s);
}

// Philox-4x32-10 (Random123's philox4x32, 10 rounds) of counter (b, 0, 0, 0) under key (k0, k1):
// src/util/philox.ts is the reference, the webgpu backend's WGSL a third copy of the same bits.
inline void philox4x32(uint32_t b, uint32_t k0, uint32_t k1, uint32_t out[4]) {
  uint32_t x0 = b, x1 = 0, x2 = 0, x3 = 0;
  for (int round = 0; round < 10; round++) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const uint64_t p0 = uint64_t{0xD2511F53u} * x0;
    const uint64_t p1 = uint64_t{0xCD9E8D57u} * x2;
    x0 = static_cast<uint32_t>(p1 >> 32) ^ x1 ^ k0;
    x1 = static_cast<uint32_t>(p1);
    x2 = static_cast<uint32_t>(p0 >> 32) ^ x3 ^ k1;
    x3 = static_cast<uint32_t>(p0);
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
}

// Philox blocks (of four elements) per thread before the loop forks.
constexpr int64_t kDropoutGrain = 1 << 14;

// dropoutMask(k0, k1, threshold, keep, out): out[i] = 0 where word i % 4 of Philox at counter
// i / 4 is below threshold, else keep. Counter-based, so threads split the blocks and the mask is
// the same bits whatever the thread count (and the same as the js and webgpu backends').
napi_value DropoutMaskKernel(Args& a) {
  const uint32_t k0 = static_cast<uint32_t>(a.integer(0, "k0", 0, INT64_C(0xFFFFFFFF)));
  const uint32_t k1 = static_cast<uint32_t>(a.integer(1, "k1", 0, INT64_C(0xFFFFFFFF)));
  const uint32_t threshold = static_cast<uint32_t>(a.integer(2, "threshold", 0, INT64_C(0xFFFFFFFF)));
  const float keep = static_cast<float>(a.num(3, "keep"));
  const F32 out = a.f32(4, "out");
  const int64_t blocks = (out.n + 3) / 4;
  parallelRange(blocks, kDropoutGrain, [&](int64_t lo, int64_t hi) {
    uint32_t w[4];
    for (int64_t b = lo; b < hi; b++) {
      philox4x32(static_cast<uint32_t>(b), k0, k1, w);
      for (int64_t j = 0; j < 4 && b * 4 + j < out.n; j++) out.p[b * 4 + j] = w[j] < threshold ? 0.0f : keep;
    }
  });
  return undefinedValue(a.env());
}

}  // namespace

void registerElementwise(napi_env env, napi_value exports) {
  defineFunction(env, exports, "unary", entry<UnaryKernel>);
  defineFunction(env, exports, "unaryBackward", entry<UnaryBackwardKernel>);
  defineFunction(env, exports, "binary", entry<BinaryKernel>);
  defineFunction(env, exports, "affine", entry<AffineKernel>);
  defineFunction(env, exports, "powScalar", entry<PowScalarKernel>);
  defineFunction(env, exports, "axpy", entry<AxpyKernel>);
  defineFunction(env, exports, "addInto", entry<AddIntoKernel>);
  defineFunction(env, exports, "fill", entry<FillKernel>);
  defineFunction(env, exports, "sumSquares", entry<SumSquaresKernel>);
  defineFunction(env, exports, "dropoutMask", entry<DropoutMaskKernel>);
}

}  // namespace sc
