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
/**
 * A linear layer's x·Wᵀ over a few to a few hundred rows (a prompt's prefill, a batch past the thin
 * kernel's rows), not a vocabulary head's: `auto` takes oneDNN's matmul primitive for it, forked
 * from kLayerGrainFlops a thread. On the AMD EPYC (Zen 4, 2 cores; /tmp harness, the same matrices
 * in a loop, 2026-11-27), 16-256 rows against SmolLM2's [1536, 576], [576, 1536] and [576, 576]:
 * the primitive 79-109 GFLOP/s on one thread where dnnl_sgemm ran 38-104, and 143-208 on two (1.7-2.0×)
 * where a second thread gave dnnl_sgemm 0.6-2.0×; the general grain (kGemmGrainFlops, measured
 * on [M, 784]·[784, 128]) kept a 32-token prefill's 57-MFLOP products on one thread. Only outputs
 * of 512 columns or more: narrower layers (an MLP's 128, where that grain found a second thread
 * losing) keep the general rule.
 */
inline bool layerRowsProduct(const Gemm& g) {
  return !g.transA && g.transB && g.batch == 1 && g.M > 4 && g.M <= 256 && g.N >= 512 && g.N < 16384;
}
/** FLOPs per thread before a layerRowsProduct forks (from 2 × this: 8 MFLOP, 16 rows × [576, 576] at 1.8× on two threads). */
constexpr double kLayerGrainFlops = 4e6;

#ifdef SC_HAVE_DNNL
bool gemmDnnlMatmul(const Gemm& g);  // false when oneDNN cannot express it (gemm_dnnl.cc)
void gemmDnnlSgemm(const Gemm& g);
#endif
#ifdef SC_HAVE_CBLAS
void gemmCblas(const Gemm& g);
#endif

}  // namespace sc
