// stridedCopy: transpose / permute / slice / concat as one strided walk (see strided.h).
#include <cstring>

#include "napi_args.h"
#include "registry.h"
#include "strided.h"
#include "threads.h"

namespace sc {
namespace {

inline void copyRow(const float* s, int64_t ss, float* d, int64_t ds, int64_t n, bool acc) {
  if (acc) {
    if (ss == 1 && ds == 1) for (int64_t j = 0; j < n; j++) d[j] += s[j];
    else for (int64_t j = 0; j < n; j++) d[j * ds] += s[j * ss];
  } else {
    if (ss == 1 && ds == 1) std::memmove(d, s, static_cast<size_t>(n) * sizeof(float));
    else for (int64_t j = 0; j < n; j++) d[j * ds] = s[j * ss];
  }
}

// stridedCopy(src, srcOffset, dst, dstOffset, dims, accumulate), dims = [nd, shape, srcStrides, dstStrides]
napi_value StridedCopyKernel(Args& a) {
  const F32 src = a.f32(0, "src"), dst = a.f32(2, "dst");
  const int64_t so = a.integer(1, "srcOffset"), dOff = a.integer(3, "dstOffset");
  const double* d = a.ints(4, "dims", 1);
  const int nd = static_cast<int>(d[0]);
  if (nd < 0 || nd > kMaxDims) throwRange("stridedCopy: at most 16 dimensions");
  d = a.ints(4, "dims", 1 + 3 * nd);
  const bool acc = a.flag(5);
  StridedView v;
  v.nd = nd;
  v.ops = 2;
  for (int k = 0; k < nd; k++) {
    v.shape[k] = static_cast<int64_t>(d[1 + k]);
    if (v.shape[k] < 0) throwRange("stridedCopy: negative dimension");
    v.stride[0][k] = static_cast<int64_t>(d[1 + nd + k]);
    v.stride[1][k] = static_cast<int64_t>(d[1 + 2 * nd + k]);
  }
  const int64_t total = v.total();
  if (total == 0) return undefinedValue(a.env());
  coalesce(v);
  checkExtent(a, v, 0, so, src.n, "src");
  checkExtent(a, v, 1, dOff, dst.n, "dst");
  // A destination stride of 0 makes several rows write one place: keep those in order.
  bool aliased = false;
  for (int k = 0; k < v.nd; k++)
    if (v.stride[1][k] == 0 && v.shape[k] > 1) aliased = true;
  const int last = v.nd - 1;
  const int64_t n = v.shape[last], rows = total / n;
  auto run = [&](int64_t lo, int64_t hi) {
    forEachRow(v, lo, hi, [&](const int64_t* off, int64_t len) {
      copyRow(src.p + so + off[0], v.stride[0][last], dst.p + dOff + off[1], v.stride[1][last], len, acc);
    });
  };
  if (aliased) {
    run(0, rows);
  } else if (v.nd == 1) {
    // One long row: split the row itself across threads.
    parallelRange(n, 65536, [&](int64_t lo, int64_t hi) {
      copyRow(src.p + so + lo * v.stride[0][0], v.stride[0][0], dst.p + dOff + lo * v.stride[1][0], v.stride[1][0], hi - lo, acc);
    });
  } else {
    parallelRange(rows, std::max<int64_t>(1, 65536 / n), run);
  }
  return undefinedValue(a.env());
}

}  // namespace

void registerLayout(napi_env env, napi_value exports) {
  defineFunction(env, exports, "stridedCopy", entry<StridedCopyKernel>);
}

}  // namespace sc
