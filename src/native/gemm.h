// Row-major single-precision GEMM used by the `gemm` kernel and internally (im2col convolution).
#pragma once

#include <cstdint>

namespace sc {

struct Gemm {
  bool transA = false, transB = false;
  int64_t M = 0, N = 0, K = 0;
  float alpha = 1, beta = 0;
  const float* A = nullptr;
  int64_t lda = 0, strideA = 0;
  const float* B = nullptr;
  int64_t ldb = 0, strideB = 0;
  float* C = nullptr;
  int64_t ldc = 0, strideC = 0;
  int64_t batch = 1;
  /** Optional [N] row added to every row of C (beta must be 0): a linear layer's bias, fused. */
  const float* bias = nullptr;
};

/** C_b = alpha op(A_b) op(B_b) + beta C_b for every b, with the fastest engine available. */
void sgemm(const Gemm& g);

/** Which engine `sgemm` prefers: "dnnl" (matmul primitive), "dnnl_sgemm", "cblas", "thin" or "own". */
const char* gemmEngine();
/** Overrides the engine (benchmarks and tests); returns false if it is not compiled in. */
bool setGemmEngine(const char* name);

// Engines. Each handles one batch entry (dnnl_matmul also whole batches) and beta = 0 exactly.
// Only dnnl_matmul and gemmThin take a bias; sgemm copies it into C for the others.
void gemmOwn(const Gemm& g);  // cache-blocked C++ (gemm_blocked.cc)
/** Rows of A at most this can take the thin x·Wᵀ kernel (gemm_thin.cc). */
constexpr int64_t kThinGemmRows = 16;
/**
 * Rows of A from which `auto` takes it: every row count, one included. Over a decode step's distinct
 * weights (bench:native-gemm --decode-step, one thread) it read W faster than dnnl_sgemm's
 * matrix-vector path at 1-3 rows too: SmolLM2-135M's 211 products in 36.7-39.1 ms against
 * 41.1-43.7 at one row (docs/PERFORMANCE.md, "The thin fp32 product").
 */
constexpr int64_t kThinGemmMinRows = 1;
/** Rows of A up to which `auto` takes it: at 16 rows oneDNN's packing has paid for itself (as fast or faster). */
constexpr int64_t kThinGemmAutoRows = 12;
/** Whether gemmThin takes g: A·Bᵀ (a linear layer's x·Wᵀ), M ≤ kThinGemmRows, a CPU with AVX-512. */
bool gemmThinApplies(const Gemm& g);
/** The thin x·Wᵀ kernel (bias and beta honoured); false (nothing written) where it does not apply. */
bool gemmThin(const Gemm& g);
#ifdef SC_HAVE_DNNL
bool gemmDnnlMatmul(const Gemm& g);  // false when oneDNN cannot express it (gemm_dnnl.cc)
void gemmDnnlSgemm(const Gemm& g);
#endif
#ifdef SC_HAVE_CBLAS
void gemmCblas(const Gemm& g);
#endif

}  // namespace sc
