// Softmax family over the last axis of a [rows, cols] view, rows split across threads.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "napi_args.h"
#include "registry.h"
#include "simd.h"
#include "softmax_row.h"
#include "threads.h"
#include "vmath.h"

namespace sc {

SC_VECTOR_KERNEL(float, rowMax, (const float* SC_RESTRICT x, int64_t cols), (x, cols)) {
  float m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (int64_t j = 0; j < cols; j++) m = x[j] > m ? x[j] : m;
  return m;
}

// Each element is read before it is written (no restrict: x is both).
SC_VECTOR_KERNEL(double, expShiftedSumInPlace, (float* x, int64_t cols, float m), (x, cols, m)) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < cols; j++) {
    const float e = vexp(x[j] - m);
    x[j] = e;
    s += e;
  }
  return s;
}

namespace {

constexpr int64_t kGrain = 16384;  // elements per thread before a row loop forks

/** Σ exp(x − m), writing each term to out (vectorised exp; the sum in double lanes). */
SC_VECTOR_KERNEL(double, expShiftedSum, (const float* SC_RESTRICT x, int64_t cols, float m, float* SC_RESTRICT out), (x, cols, m, out)) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < cols; j++) {
    const float e = vexp(x[j] - m);
    out[j] = e;
    s += e;
  }
  return s;
}

/** Σ exp(x − m) without storing the terms. */
SC_VECTOR_KERNEL(double, expSum, (const float* SC_RESTRICT x, int64_t cols, float m), (x, cols, m)) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < cols; j++) s += vexp(x[j] - m);
  return s;
}

SC_VECTOR_KERNEL(void, scaleRow, (float* SC_RESTRICT o, int64_t cols, float k), (o, cols, k)) {
  for (int64_t j = 0; j < cols; j++) o[j] *= k;
}

/** Σ x in double lanes. */
SC_VECTOR_KERNEL(double, rowSum, (const float* SC_RESTRICT x, int64_t cols), (x, cols)) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < cols; j++) s += x[j];
  return s;
}

/** o += g − exp(y)·s: a log-softmax's backward over one row (o is neither y nor g: x's gradient). */
SC_VECTOR_KERNEL(void, logSoftmaxBackwardRow, (const float* SC_RESTRICT y, const float* SC_RESTRICT g, float* SC_RESTRICT o, int64_t cols, float s),
                 (y, g, o, cols, s)) {
#pragma omp simd
  for (int64_t j = 0; j < cols; j++) o[j] += g[j] - vexp(y[j]) * s;
}

/** o += k · p */
SC_VECTOR_KERNEL(void, addScaled, (float* SC_RESTRICT o, const float* SC_RESTRICT p, int64_t cols, float k), (o, p, cols, k)) {
  for (int64_t j = 0; j < cols; j++) o[j] += k * p[j];
}

/** out = exp(x - max); returns max and the sum of the exponentials. */
inline double expShifted(const float* x, int64_t cols, float* out, float* maxOut) {
  const float m = rowMax(x, cols);
  *maxOut = m;
  // Not through the restrict-qualified kernel when out is x (softmaxCrossEntropy in place).
  if (out == x) return expShiftedSumInPlace(out, cols, m);
  return expShiftedSum(x, cols, m, out);
}

template <class Row>
void rowsParallel(int64_t rows, int64_t cols, Row&& row) {
  parallelRange(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) row(r);
  });
}

void rowsCols(Args& a, size_t i, int64_t* rows, int64_t* cols) {
  *rows = a.integer(i, "rows");
  *cols = a.integer(i + 1, "cols");
}

// softmax(x, rows, cols, out)
napi_value SoftmaxKernel(Args& a) {
  const F32 x = a.f32(0, "x"), out = a.f32(3, "out");
  int64_t rows, cols;
  rowsCols(a, 1, &rows, &cols);
  a.need(x, rows * cols, "x");
  a.need(out, rows * cols, "out");
  rowsParallel(rows, cols, [&](int64_t r) {
    float m;
    float* o = out.p + r * cols;
    scaleRow(o, cols, static_cast<float>(1.0 / expShifted(x.p + r * cols, cols, o, &m)));
  });
  return undefinedValue(a.env());
}

// softmaxCausal(x, slices, rows, cols, out): row r of each [rows, cols] slice over columns 0..r,
// zeros after (a causal attention's probabilities).
napi_value SoftmaxCausalKernel(Args& a) {
  const F32 x = a.f32(0, "x"), out = a.f32(4, "out");
  const int64_t slices = a.integer(1, "slices");
  int64_t rows, cols;
  rowsCols(a, 2, &rows, &cols);
  a.need(x, slices * rows * cols, "x");
  a.need(out, slices * rows * cols, "out");
  rowsParallel(slices * rows, cols, [&](int64_t sr) {
    const int64_t seen = std::min<int64_t>(sr % rows + 1, cols);
    float m;
    float* o = out.p + sr * cols;
    scaleRow(o, seen, static_cast<float>(1.0 / expShifted(x.p + sr * cols, seen, o, &m)));
    std::fill(o + seen, o + cols, 0.0f);
  });
  return undefinedValue(a.env());
}

// softmaxBackward(y, gy, rows, cols, gx): gx += y (gy - sum(gy y))
napi_value SoftmaxBackwardKernel(Args& a) {
  const F32 y = a.f32(0, "y"), gy = a.f32(1, "gy"), gx = a.f32(4, "gx");
  int64_t rows, cols;
  rowsCols(a, 2, &rows, &cols);
  a.need(y, rows * cols, "y");
  a.need(gy, rows * cols, "gy");
  a.need(gx, rows * cols, "gx");
  rowsParallel(rows, cols, [&](int64_t r) {
    const float *yr = y.p + r * cols, *g = gy.p + r * cols;
    float* o = gx.p + r * cols;
    double dot = 0;
    for (int64_t j = 0; j < cols; j++) dot += static_cast<double>(g[j]) * yr[j];
    const float d = static_cast<float>(dot);
    for (int64_t j = 0; j < cols; j++) o[j] += yr[j] * (g[j] - d);
  });
  return undefinedValue(a.env());
}

// logSoftmax(x, rows, cols, out)
napi_value LogSoftmaxKernel(Args& a) {
  const F32 x = a.f32(0, "x"), out = a.f32(3, "out");
  int64_t rows, cols;
  rowsCols(a, 1, &rows, &cols);
  a.need(x, rows * cols, "x");
  a.need(out, rows * cols, "out");
  rowsParallel(rows, cols, [&](int64_t r) {
    const float* xr = x.p + r * cols;
    float* o = out.p + r * cols;
    const float m = rowMax(xr, cols);
    const float lse = m + static_cast<float>(std::log(expSum(xr, cols, m)));
    for (int64_t j = 0; j < cols; j++) o[j] = xr[j] - lse;
  });
  return undefinedValue(a.env());
}

// logSoftmaxBackward(y, gy, rows, cols, gx): gx += gy - exp(y) sum(gy)
napi_value LogSoftmaxBackwardKernel(Args& a) {
  const F32 y = a.f32(0, "y"), gy = a.f32(1, "gy"), gx = a.f32(4, "gx");
  int64_t rows, cols;
  rowsCols(a, 2, &rows, &cols);
  a.need(y, rows * cols, "y");
  a.need(gy, rows * cols, "gy");
  a.need(gx, rows * cols, "gx");
  // Vectorised (a language model's head backward runs it over every position's vocabulary: scalar, it
  // was 4 % of a GRPO training pass on the SmolLM2 shape).
  rowsParallel(rows, cols, [&](int64_t r) {
    const float* g = gy.p + r * cols;
    logSoftmaxBackwardRow(y.p + r * cols, g, gx.p + r * cols, cols, static_cast<float>(rowSum(g, cols)));
  });
  return undefinedValue(a.env());
}

void checkLabels(const I32& labels, int64_t rows, int64_t cols, const char* fn) {
  for (int64_t r = 0; r < rows; r++) {
    const int32_t l = labels.p[r];
    if (l < -1 || l >= cols)
      throwRange(std::string(fn) + ": label " + std::to_string(l) + " at row " + std::to_string(r) +
                 " is outside [0, " + std::to_string(cols) + ") (use -1 to ignore a row)");
  }
}

// softmaxCrossEntropy(logits, labels, rows, cols, probs[, probScale]) → mean loss over rows with
// label >= 0; probs = probScale · softmax(logits). probs may be logits itself (in place: a row's
// labelled logit is read before the row is overwritten).
napi_value SoftmaxCrossEntropyKernel(Args& a) {
  const F32 logits = a.f32(0, "logits"), probs = a.f32(4, "probs");
  const I32 labels = a.i32(1, "labels");
  int64_t rows, cols;
  rowsCols(a, 2, &rows, &cols);
  const double probScale = a.argCount() > 5 ? a.num(5, "probScale") : 1.0;
  a.need(logits, rows * cols, "logits");
  a.need(probs, rows * cols, "probs");
  a.need(labels, rows, "labels");
  checkLabels(labels, rows, cols, a.fn());
  // Each row's loss in its own slot, summed in row order afterwards: the same bits on any thread count.
  std::vector<double> rowLoss(static_cast<size_t>(rows), 0.0);
  rowsParallel(rows, cols, [&](int64_t r) {
    const float* xr = logits.p + r * cols;
    float* p = probs.p + r * cols;
    const int32_t label = labels.p[r];
    const float picked = label >= 0 ? xr[label] : 0.0f;
    float m;
    const double s = expShifted(xr, cols, p, &m);
    scaleRow(p, cols, static_cast<float>(probScale / s));
    // log-sum-exp rather than log(prob): a tiny probability keeps its precision.
    if (label >= 0) rowLoss[r] = m + std::log(s) - picked;
  });
  double loss = 0;
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; r++) {
    if (labels.p[r] < 0) continue;
    loss += rowLoss[r];
    counted++;
  }
  return numberValue(a.env(), counted == 0 ? 0.0 : loss / static_cast<double>(counted));
}

// softmaxCrossEntropyBackward(probs, labels, rows, cols, scale, gLogits)
napi_value SoftmaxCrossEntropyBackwardKernel(Args& a) {
  const F32 probs = a.f32(0, "probs"), g = a.f32(5, "gLogits");
  const I32 labels = a.i32(1, "labels");
  int64_t rows, cols;
  rowsCols(a, 2, &rows, &cols);
  const float scale = static_cast<float>(a.num(4, "scale"));
  a.need(probs, rows * cols, "probs");
  a.need(g, rows * cols, "gLogits");
  a.need(labels, rows, "labels");
  checkLabels(labels, rows, cols, a.fn());
  rowsParallel(rows, cols, [&](int64_t r) {
    const int32_t label = labels.p[r];
    if (label < 0) return;
    addScaled(g.p + r * cols, probs.p + r * cols, cols, scale);
    g.p[r * cols + label] -= scale;
  });
  return undefinedValue(a.env());
}

}  // namespace

void registerSoftmax(napi_env env, napi_value exports) {
  defineFunction(env, exports, "softmax", entry<SoftmaxKernel>);
  defineFunction(env, exports, "softmaxCausal", entry<SoftmaxCausalKernel>);
  defineFunction(env, exports, "softmaxBackward", entry<SoftmaxBackwardKernel>);
  defineFunction(env, exports, "logSoftmax", entry<LogSoftmaxKernel>);
  defineFunction(env, exports, "logSoftmaxBackward", entry<LogSoftmaxBackwardKernel>);
  defineFunction(env, exports, "softmaxCrossEntropy", entry<SoftmaxCrossEntropyKernel>);
  defineFunction(env, exports, "softmaxCrossEntropyBackward", entry<SoftmaxCrossEntropyBackwardKernel>);
}

}  // namespace sc
