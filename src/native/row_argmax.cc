// A row's argmax for greedy decoding (generate/sampling.ts argmax): the index of the first largest
// value, NaN never taken unless the row starts with one (then 0), as the JavaScript loop it stands
// in for. A decode step's row is the vocabulary's logits (SmolLM2's 49,152, Qwen2.5's 151,936),
// which that loop read at ~1 ns a value (50 µs a token on SmolLM2, ~1.3 % of a Q4_0 token); here
// the maximum (softmax_row.h rowMax, NaN skipped) and the first value equal to it are vector scans.
#include <cstdint>

#include "napi_args.h"
#include "registry.h"
#include "simd.h"
#include "softmax_row.h"

namespace sc {
namespace {

/** The values a chunk of firstEqual's scan compares before it looks for which one matched. */
constexpr int64_t kChunk = 64;

/** The first j with x[j] == m (−0 equals +0), or −1. */
SC_VECTOR_KERNEL(int64_t, firstEqual, (const float* SC_RESTRICT x, int64_t cols, float m), (x, cols, m)) {
  int64_t c = 0;
  for (; c + kChunk <= cols; c += kChunk) {
    int any = 0;
#pragma omp simd reduction(| : any)
    for (int64_t j = 0; j < kChunk; j++) any |= x[c + j] == m;
    if (any) break;
  }
  for (int64_t j = c; j < cols; j++)
    if (x[j] == m) return j;
  return -1;
}

// rowArgmax(x): the index of x's first largest value; 0 for an empty row or one whose first value is NaN.
napi_value RowArgmaxKernel(Args& a) {
  const F32 x = a.f32(0, "x");
  if (x.n == 0 || x.p[0] != x.p[0]) return numberValue(a.env(), 0);
  return numberValue(a.env(), static_cast<double>(firstEqual(x.p, x.n, rowMax(x.p, x.n))));
}

}  // namespace

void registerRowArgmax(napi_env env, napi_value exports) { defineFunction(env, exports, "rowArgmax", entry<RowArgmaxKernel>); }

}  // namespace sc
