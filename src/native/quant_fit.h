// The fits of quant_quantize.cc (ggml's make_qkx2_quants and make_qx_quants) for eight groups at
// once where the CPU has a vector path for them (quant_fit_body.h, on AVX2 and on arm64's NEON),
// byte for byte the scalar fits'.
//
// Why a vector lane's nearest_int may subtract in float where the scalar subtracts in double: for
// |v| < 2²² the sum v + 1.5·2²³ lies in [2²³, 2²⁴), an integer, and the difference is exact
// (Sterbenz); past that both results lie outside [0, nmax] on the same side and clamp alike.
#pragma once

#include <cstdint>

#include "cpu_features.h"

namespace sc {

/** A group's fit: w ≈ scale·code − min (min as stored, the negated offset). */
struct AffineFit {
  float scale, min;
};

#if (defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))) || defined(__aarch64__)
/** Whether fitAffine8 and fitSymmetric8 run here (AVX2 on x86-64, NEON on arm64; SMOLCLUSTER_CPU not below either). */
bool vectorFitsAvailable();

/**
 * fitAffine for the eight groups of 32 of a super-block: x and w 256 values each (group g at
 * 32g), codes 0..nmax written for all 256, fits[g] each group's; nstep + 1 candidate scales
 * (rmin + rdelta·step + nmax)/range after the first.
 */
void fitAffine8(const float* x, const float* w, int nmax, float rmin, float rdelta, int nstep, uint8_t* codes, AffineFit* fits);

/** fitSymmetric (rmse 1) for eight groups of 16: x 128 values (group g at 16g), codes + nmax written, scales[g] each group's. */
void fitSymmetric8(const float* x, int nmax, uint8_t* codes, float* scales);
#else
inline bool vectorFitsAvailable() { return false; }
inline void fitAffine8(const float*, const float*, int, float, float, int, uint8_t*, AffineFit*) {}
inline void fitSymmetric8(const float*, int, uint8_t*, float*) {}
#endif

}  // namespace sc
