// N-dimensional strided iteration shared by `binary` and `stridedCopy`: dimensions are coalesced
// where every operand is contiguous across them, and the innermost dimension becomes a row that
// a tight loop handles.
#pragma once

#include <cstdint>

#include "napi_args.h"

namespace sc {

constexpr int kMaxDims = 16;

/** Up to three operands (index 0..ops-1) walking the same shape with their own strides. */
struct StridedView {
  int nd = 0;
  int ops = 0;
  int64_t shape[kMaxDims];
  int64_t stride[3][kMaxDims];
  int64_t total() const {
    int64_t t = 1;
    for (int d = 0; d < nd; d++) t *= shape[d];
    return t;
  }
};

/** Merges dimension d into d+1 wherever all operands are contiguous across them; drops size-1 dims. */
inline void coalesce(StridedView& v) {
  int out = 0;
  for (int d = 0; d < v.nd; d++) {
    if (v.shape[d] == 1 && v.nd > 1) continue;
    if (out > 0) {
      bool merge = true;
      for (int k = 0; k < v.ops; k++)
        if (v.stride[k][out - 1] != v.stride[k][d] * v.shape[d]) merge = false;
      if (merge) {
        v.shape[out - 1] *= v.shape[d];
        for (int k = 0; k < v.ops; k++) v.stride[k][out - 1] = v.stride[k][d];
        continue;
      }
    }
    v.shape[out] = v.shape[d];
    for (int k = 0; k < v.ops; k++) v.stride[k][out] = v.stride[k][d];
    out++;
  }
  if (out == 0) {  // all dims were 1: one element
    v.shape[0] = 1;
    for (int k = 0; k < v.ops; k++) v.stride[k][0] = 0;
    out = 1;
  }
  v.nd = out;
}

/** Lowest and highest element offset (relative to the base) operand k touches. */
inline void extent(const StridedView& v, int k, int64_t* lo, int64_t* hi) {
  *lo = 0;
  *hi = 0;
  for (int d = 0; d < v.nd; d++) {
    const int64_t reach = v.stride[k][d] * (v.shape[d] - 1);
    if (reach < 0) *lo += reach;
    else *hi += reach;
  }
}

/** Checks operand k (base offset `base` into a buffer of `len` elements) stays in bounds. */
inline void checkExtent(const Args& a, const StridedView& v, int k, int64_t base, int64_t len, const char* name) {
  if (v.total() == 0) return;
  int64_t lo, hi;
  extent(v, k, &lo, &hi);
  if (base + lo < 0 || base + hi >= len)
    throwRange(std::string(a.fn()) + ": the view of '" + name + "' reaches elements [" +
               std::to_string(base + lo) + ", " + std::to_string(base + hi) + "] of a buffer of " +
               std::to_string(len));
}

/**
 * Calls row(off[0..ops-1], n) for rows [rowLo, rowHi) of the view, where a row is the innermost
 * dimension (n = shape[nd-1]) and off are the operands' element offsets at its start.
 */
template <class Row>
void forEachRow(const StridedView& v, int64_t rowLo, int64_t rowHi, Row&& row) {
  const int outerDims = v.nd - 1;
  int64_t idx[kMaxDims] = {0};
  int64_t off[3] = {0, 0, 0};
  int64_t r = rowLo;
  for (int d = outerDims - 1; d >= 0; d--) {  // row index → odometer position
    idx[d] = r % v.shape[d];
    r /= v.shape[d];
    for (int k = 0; k < v.ops; k++) off[k] += idx[d] * v.stride[k][d];
  }
  const int64_t n = v.shape[v.nd - 1];
  for (int64_t rr = rowLo; rr < rowHi; rr++) {
    row(off, n);
    for (int d = outerDims - 1; d >= 0; d--) {
      for (int k = 0; k < v.ops; k++) off[k] += v.stride[k][d];
      if (++idx[d] < v.shape[d]) break;
      for (int k = 0; k < v.ops; k++) off[k] -= v.stride[k][d] * v.shape[d];
      idx[d] = 0;
    }
  }
}

}  // namespace sc
