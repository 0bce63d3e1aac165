// Reductions over the middle axis of an [outer, n, inner] view.
#include <algorithm>

#include "napi_args.h"
#include "registry.h"
#include "threads.h"

namespace sc {
namespace {

/** out[o, i0:i1] = sum_k x[o, k, i0:i1]; rows of length 1 sum in double with a SIMD reduction. */
void sumBlock(const float* x, int64_t n, int64_t inner, float* out, int64_t o, int64_t i0, int64_t i1) {
  const float* base = x + o * n * inner;
  float* dst = out + o * inner;
  if (inner == 1) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t k = 0; k < n; k++) s += base[k];
    dst[0] = static_cast<float>(s);
    return;
  }
  std::fill(dst + i0, dst + i1, 0.0f);
  for (int64_t k = 0; k < n; k++) {
    const float* row = base + k * inner;
    for (int64_t i = i0; i < i1; i++) dst[i] += row[i];
  }
}

void maxBlock(const float* x, int64_t n, int64_t inner, float* out, int32_t* arg, int64_t o, int64_t i0, int64_t i1) {
  const float* base = x + o * n * inner;
  float* best = out + o * inner;
  int32_t* at = arg + o * inner;
  for (int64_t i = i0; i < i1; i++) {
    best[i] = base[i];
    at[i] = 0;
  }
  for (int64_t k = 1; k < n; k++) {
    const float* row = base + k * inner;
    for (int64_t i = i0; i < i1; i++) {
      const float v = row[i], b = best[i];
      // A NaN wins once and then sticks (torch propagates NaN through max).
      if (v > b || (v != v && b == b)) {
        best[i] = v;
        at[i] = static_cast<int32_t>(k);
      }
    }
  }
}

/** Splits the work over `outer` when there is enough of it, else over columns of `inner`. */
template <class Block>
void split(int64_t outer, int64_t n, int64_t inner, Block&& block) {
  const int64_t work = outer * n * inner;
  if (!parallel(work) || (outer < threads() && inner < 256)) {
    for (int64_t o = 0; o < outer; o++) block(o, 0, inner);
  } else if (outer >= threads()) {
    parallelRange(outer, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; o++) block(o, 0, inner);
    });
  } else {
    for (int64_t o = 0; o < outer; o++)
      parallelRange(inner, 64, [&](int64_t lo, int64_t hi) { block(o, lo, hi); });
  }
}

void dims(Args& a, size_t i, int64_t* outer, int64_t* n, int64_t* inner) {
  *outer = a.integer(i, "outer");
  *n = a.integer(i + 1, "n");
  *inner = a.integer(i + 2, "inner");
}

// reduceSum(x, outer, n, inner, out)
napi_value ReduceSumKernel(Args& a) {
  const F32 x = a.f32(0, "x"), out = a.f32(4, "out");
  int64_t outer, n, inner;
  dims(a, 1, &outer, &n, &inner);
  a.need(x, outer * n * inner, "x");
  a.need(out, outer * inner, "out");
  split(outer, n, inner, [&](int64_t o, int64_t i0, int64_t i1) { sumBlock(x.p, n, inner, out.p, o, i0, i1); });
  return undefinedValue(a.env());
}

// reduceMax(x, outer, n, inner, out, argmax)
napi_value ReduceMaxKernel(Args& a) {
  const F32 x = a.f32(0, "x"), out = a.f32(4, "out");
  const I32 arg = a.i32(5, "argmax");
  int64_t outer, n, inner;
  dims(a, 1, &outer, &n, &inner);
  if (n == 0) throwRange("reduceMax: cannot reduce an empty axis");
  a.need(x, outer * n * inner, "x");
  a.need(out, outer * inner, "out");
  a.need(arg, outer * inner, "argmax");
  split(outer, n, inner, [&](int64_t o, int64_t i0, int64_t i1) { maxBlock(x.p, n, inner, out.p, arg.p, o, i0, i1); });
  return undefinedValue(a.env());
}

}  // namespace

void registerReduce(napi_env env, napi_value exports) {
  defineFunction(env, exports, "reduceSum", entry<ReduceSumKernel>);
  defineFunction(env, exports, "reduceMax", entry<ReduceMaxKernel>);
}

}  // namespace sc
