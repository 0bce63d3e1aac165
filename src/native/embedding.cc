// Embedding lookup and its gradient (a scatter-add into the table).
#include <cstring>
#include <string>

#include "napi_args.h"
#include "registry.h"
#include "threads.h"

namespace sc {
namespace {

void checkIds(const I32& ids, int64_t vocab, const char* fn) {
  for (int64_t i = 0; i < ids.n; i++)
    if (ids.p[i] < 0 || ids.p[i] >= vocab)
      throwRange(std::string(fn) + ": id " + std::to_string(ids.p[i]) + " at position " + std::to_string(i) +
                 " is outside the table [0, " + std::to_string(vocab) + ")");
}

// embedding(table, ids, dim, out)
napi_value EmbeddingKernel(Args& a) {
  const F32 table = a.f32(0, "table"), out = a.f32(3, "out");
  const I32 ids = a.i32(1, "ids");
  const int64_t dim = a.integer(2, "dim", 1);
  a.need(out, ids.n * dim, "out");
  checkIds(ids, table.n / dim, a.fn());
  parallelRange(ids.n, std::max<int64_t>(1, 65536 / dim), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++)
      std::memcpy(out.p + i * dim, table.p + static_cast<int64_t>(ids.p[i]) * dim, static_cast<size_t>(dim) * sizeof(float));
  });
  return undefinedValue(a.env());
}

// embeddingBackward(gy, ids, dim, gTable)
napi_value EmbeddingBackwardKernel(Args& a) {
  const F32 gy = a.f32(0, "gy"), gTable = a.f32(3, "gTable");
  const I32 ids = a.i32(1, "ids");
  const int64_t dim = a.integer(2, "dim", 1);
  a.need(gy, ids.n * dim, "gy");
  checkIds(ids, gTable.n / dim, a.fn());
  // Ids repeat, so threads take column ranges rather than rows: no two write the same element.
  parallelRange(dim, std::max<int64_t>(16, 65536 / std::max<int64_t>(ids.n, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t i = 0; i < ids.n; i++) {
      const float* src = gy.p + i * dim;
      float* dst = gTable.p + static_cast<int64_t>(ids.p[i]) * dim;
      for (int64_t j = lo; j < hi; j++) dst[j] += src[j];
    }
  });
  return undefinedValue(a.env());
}

}  // namespace

void registerEmbedding(napi_env env, napi_value exports) {
  defineFunction(env, exports, "embedding", entry<EmbeddingKernel>);
  defineFunction(env, exports, "embeddingBackward", entry<EmbeddingBackwardKernel>);
}

}  // namespace sc
