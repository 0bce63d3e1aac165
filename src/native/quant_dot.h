// The quantized products' shared pieces: the activation rows quantized to int8 blocks of 32 (one
// float32 scale each, as ggml's Q8_0 but with a float32 scale), and the integer dot-product kernels
// (quant_dot_generic.cc, quant_dot_avx2.cc, quant_dot_vnni.cc, quant_dot_neon.cc), each one body
// (quant_dot_body.h) over quant_blocks.h's unpacked codes with its own 32-byte dot product.
#pragma once

#include <cstdint>

#include "quant_blocks.h"

namespace sc {

/**
 * Rows of x up to which quantLinear takes the integer path (more: dequantized tiles of W + fp32 GEMM).
 * One thread, Qwen2.5-0.5B's MLP shapes (docs/NATIVE.md, "Quantized products"): the integer path was
 * the faster at 12 rows for all 10 shape × format pairs, at 16 for 8 of 10, at 32 for 2.
 */
constexpr int64_t kQuantDotRows = 16;

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

/** Rows [row0, row0 + rows) of a quantized [*, K] matrix as float32 (gguf-py's values, bit for bit). */
void dequantizeRows(QFmt f, const uint8_t* w, int64_t K, int64_t row0, int64_t rows, float* out);

}  // namespace sc
