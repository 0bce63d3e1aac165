// llama.cc's row kernels for other native callers (a fused decode layer: llama_decode.cc), so both
// paths round alike.
#pragma once

#include <cstdint>

namespace sc {

/** y = x · w / rms(x) over one row of `cols` (the sum of squares in double); its 1/rms into *invRms. */
void rmsNormRow(const float* x, const float* w, int64_t cols, double eps, float* y, float* invRms);

/**
 * Rows [lo, hi) of src [rows, 2h] turned by sign·angle(row mod t, i) in rotate_half's layout:
 * dst = (or += with accumulate) (a·c − b·s, b·c + a·s) for each pair (a, b) = (src[i], src[i + h]).
 */
void rotateRows(const float* src, const float* cosT, const float* sinT, int64_t t, int64_t h, float sign, bool accumulate, int64_t lo, int64_t hi,
                float* dst);

/** out[i] = silu(gate[i]) · up[i] for i in [lo, hi). */
void siluMulRange(const float* gate, const float* up, float* out, int64_t lo, int64_t hi);

}  // namespace sc
