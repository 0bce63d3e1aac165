// quant_linear.cc's product for other native callers (a fused decode layer: llama_decode.cc).
#pragma once

#include <cstdint>
#include <vector>

#include "quant_blocks.h"

namespace sc {

/**
 * x's M rows of K as the integer products read them, each form made the first time a product asks
 * and kept until reset: its codes, scales and per-16 sums (quantizeActivations), the sums' starts
 * for each centre (rows8Starts), Q4_Kx8's pairs and min terms, Q6_Kx8's lanes and their starts. Products
 * that share x (a decode block's q, k and v; its gate and up) quantize it once, and the arrays keep
 * their capacity from one reset to the next, so a decode step allocates none.
 */
class ActivationRows {
 public:
  /** x's new values (read until the next reset): every form made again when next asked. */
  void reset(const float* x, int64_t M, int64_t K);
  const float* x() const { return x_; }
  int64_t M() const { return M_; }
  int64_t K() const { return K_; }
  /** Codes [M·K], scales [M·K/32] and per-16 sums [M·K/16] (quantizeActivations'). */
  const int8_t* codes();
  const float* scales();
  const float* halfSums();
  /** rows8Starts of the codes at `centre` (Q4_0 8, Q5_0 16, Q8_0 128). */
  const int64_t* starts(int centre);
  /** rows8KX's pairs [M·K] and min terms [M·K/32]. */
  const int8_t* kPairs();
  const float* kMinTerms();
  /** rows8Q6KX's lanes [M·K] and their rows8Starts at centre 32. */
  const int8_t* q6Lanes();
  const int64_t* q6Starts();

 private:
  void quantize();
  void makeK();
  void makeQ6();
  const float* x_ = nullptr;
  int64_t M_ = 0, K_ = 0;
  bool quantized_ = false, k_ = false, q6_ = false;
  std::vector<int8_t> q_, pairs_, lanes_;
  std::vector<float> d_, s_, minTerms_;
  std::vector<int64_t> q6Starts_;
  /** The centres asked for since the reset, and their starts. */
  int centres_[3] = {0, 0, 0};
  std::vector<int64_t> starts_[3];
};

/**
 * quantLinearProduct on x's rows as an ActivationRows holds them (its quantized forms made once for
 * every product that shares x).
 */
void quantLinearProduct(QFmt f, const uint8_t* w, ActivationRows& x, int64_t N, const float* bias, float* y, bool exact, bool bf16);

/**
 * y [M, N] = x [M, K] · Wᵀ (+ bias) for W's N rows of K weights in format f, by the path quantLinear
 * takes (integer products on quantized x for a few rows at inference, tiles + GEMM past them or
 * when `exact`; bf16 operands when `bf16`). The caller has checked the sizes.
 */
void quantLinearProduct(QFmt f, const uint8_t* w, const float* x, int64_t M, int64_t N, int64_t K, const float* bias, float* y, bool exact,
                        bool bf16);

}  // namespace sc
