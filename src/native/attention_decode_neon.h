// arm64 NEON products of a decode step's attention (attention_decode_neon.cc), called by
// attention_decode.cc where cpuFeatures().neon (BFDOT where cpuFeatures().bf16).
#pragma once

#include <cstdint>

namespace sc {

#if defined(__aarch64__)
/** scores[j] = scale · q·k_j over the first `keys` rows of k (float32, or bf16 widened). */
template <class T>
void scoreRowNeon(const float* q, const T* k, float* scores, int64_t keys, int64_t d, float scale);

/** The same over bf16 q and k by BFDOT (Armv8.6 BF16). */
void scoreRowBfdot(const uint16_t* q, const uint16_t* k, float* scores, int64_t keys, int64_t d, float scale);

/** out = Σ_j p_j v_j over the first `keys` rows of v (float32, or bf16 widened), j ascending per column. */
template <class T>
void weightedRowNeon(const float* p, const T* v, float* out, int64_t keys, int64_t dv);
#endif

}  // namespace sc
