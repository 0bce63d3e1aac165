// The arm64 NEON kernels for decode's thin products (gemm_thin_neon.cc, gemv_bf16_neon.cc); each
// dispatcher (gemm_thin.cc, gemv_bf16.cc) calls them where cpuFeatures().neon allows.
#pragma once

#include "bf16.h"
#include "gemm.h"

namespace sc {

#if defined(__aarch64__)
/** C = alpha·A·Bᵀ (+ bias | + beta·C) for every batch entry, A's rows few (the caller checks gemmThinApplies). */
void gemmThinNeon(const Gemm& g);

/**
 * The thin bf16 product C = alpha·A·Bᵀ (+ bias | + beta·C), one batch entry: BFDOT where `bfdot`
 * (Armv8.6 BF16), else bf16 widened to float32 in registers and FMA. Returns the kernel's name.
 */
const char* thinBf16ProductNeon(const GemmBf16& t, bool bfdot);
#endif

}  // namespace sc
