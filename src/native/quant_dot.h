// The quantized products' shared pieces: the activation rows quantized to int8 blocks of 32 (one
// float32 scale each, as ggml's Q8_0 but with a float32 scale), and the integer dot-product kernels
// (quant_dot_generic.cc, quant_dot_avx2.cc, quant_dot_vnni.cc, quant_dot_neon.cc), each one body
// (quant_dot_body.h) over quant_blocks.h's unpacked codes with its own 32-byte dot product.
#pragma once

#include <cstdint>
#include <vector>

#include "quant_blocks.h"

namespace sc {

/**
 * Rows of x up to which quantLinear takes the integer path (more: dequantized tiles of W + fp32 GEMM).
 * One thread, Qwen2.5-0.5B's MLP shapes (docs/NATIVE.md, "Quantized products"): the integer path was
 * the faster at 12 rows for all 10 shape × format pairs, at 16 for 8 of 10, at 32 for 2.
 */
constexpr int64_t kQuantDotRows = 16;

/**
 * The same for the formats whose groups of four blocks quant_rows_avx512.cc takes at several rows
 * (Q8_0, Q4_0, Q5_0 with AVX512-VNNI; its other formats keep kQuantDotRows). One thread, Qwen2.5-0.5B's MLP shapes, an Intel Xeon (docs/NATIVE.md): at 32 rows
 * (four passes of 8) it was the faster for 5 of 6 shape × format pairs and tied the sixth (down,
 * Q8_0), 1.2–2.5× where it won. Only a bf16 step's products go this far now: otherwise past
 * kQuantDotRows rows the integer tiles take these formats (quant_tiles_int8.cc, quant_linear.cc).
 */
constexpr int64_t kQuantRowsAvx512Rows = 32;

/** Rows of x the integer kernel holds per pass over W (its accumulators); more rows take more passes. */
constexpr int64_t kQuantDotChunk = 8;

/** Rows of W dequantized at a time for the GEMM path (a tile of kQuantTileRows × K floats). */
constexpr int64_t kQuantTileRows = 128;

/**
 * x's M rows of K values (K a multiple of 32) as int8 codes q [M·K], a scale d [M·K/32] per block
 * of 32 (d = max|x|/127, q = round(x/d): |x − d·q| ≤ d/2) and, per 16 values, s = d·Σq [M·K/16]
 * (what the affine formats' offsets multiply).
 */
void quantizeActivations(const float* x, int64_t M, int64_t K, int8_t* q, float* d, float* s);

/** One quantized product y [M, N] = x̂ · Wᵀ (+ bias) over quantized activations. */
struct QuantDot {
  QFmt fmt = QFmt::Q8_0;
  int64_t M = 0, N = 0, K = 0;
  const uint8_t* W = nullptr;
  const int8_t* xq = nullptr;
  const float* xd = nullptr;
  const float* xs = nullptr;
  const float* bias = nullptr;
  float* y = nullptr;
};

/** Output columns [n0, n1) of t (every row of x, M ≤ kQuantDotChunk), one kernel per ISA. */
void quantDotGeneric(const QuantDot& t, int64_t n0, int64_t n1);
#if defined(__x86_64__)
void quantDotAvx2(const QuantDot& t, int64_t n0, int64_t n1);
void quantDotVnni(const QuantDot& t, int64_t n0, int64_t n1);
#endif
#if defined(__aarch64__)
void quantDotNeonDot(const QuantDot& t, int64_t n0, int64_t n1);
#endif

/**
 * One row of quantized x laid out for quantRow1Avx512 and quantRowsAvx512 (quant_rows_avx512.cc),
 * per group of four blocks of 32 (a K-quant super-block): its codes in the order the format's
 * unpacked codes take, each sum lane's start −centre·Σq, and x's scale for each sum lane (Q4_K,
 * Q5_K, Q6_K: for each of W's scales, prepareQ4K and prepareQ6K); a last partial group padded with
 * zeros.
 */
struct QuantRow1X {
  std::vector<int8_t> q;
  std::vector<int32_t> start;
  std::vector<float> d;
  std::vector<float> msum;  // Q4_1, Q5_1: d_x·Σq_x per sum lane (what the mins multiply); MLX: per group of 64 (the biases)
};

/** Whether quantRow1Avx512 takes format f (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, the K-quants and MLX's, on x86-64 built with GCC or Clang). */
bool quantRow1Avx512Handles(QFmt f);
/** x's one row (quantizeActivations' codes q and scales d, K values) in f's layout. */
void prepareRow1Avx512(QFmt f, const int8_t* q, const float* d, int64_t K, QuantRow1X& out);
/** y[n] = x̂·W[n] (+ bias[n]) for n in [n0, n1): the one-row product on 512-bit AVX512-VNNI. */
void quantRow1Avx512(QFmt f, const QuantRow1X& x, const uint8_t* W, int64_t K, const float* bias, float* y, int64_t n0, int64_t n1);

/** Whether quantRowsAvx512 takes format f (those quantRow1Avx512 takes). */
bool quantRowsAvx512Handles(QFmt f);
/**
 * y[m·ldy + n] = x̂_m·W[n] (+ bias[n]) for the M rows xs[0..M) (1 ≤ M ≤ kQuantDotChunk, each laid
 * out by prepareRow1Avx512) and n in [n0, n1): each group of W unpacked once for every row.
 */
void quantRowsAvx512(QFmt f, const QuantRow1X* xs, int M, const uint8_t* W, int64_t K, const float* bias, float* y, int64_t ldy, int64_t n0, int64_t n1);

/** Rows [row0, row0 + rows) of a quantized [*, K] matrix as float32 (gguf-py's values, bit for bit). */
void dequantizeRows(QFmt f, const uint8_t* w, int64_t K, int64_t row0, int64_t rows, float* out);

/**
 * A bf16 step's products over a quantized W (quant_tiles_bf16.cc): x, gy and W's dequantized values
 * rounded to bf16, as autocast rounds a float32 weight's operands, and summed in float32 by the bf16 GEMM.
 * y [M, N] = x·Wᵀ (+ bias); gx [M, K] += gy·W.
 */
void quantLinearBf16(QFmt f, const uint8_t* w, const float* x, int64_t M, int64_t N, int64_t K, float* y, const float* bias);
void quantLinearInputGradBf16(QFmt f, const uint8_t* w, const float* gy, int64_t M, int64_t N, int64_t K, float* gx);

}  // namespace sc
