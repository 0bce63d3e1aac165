// A quantized weight's products under a bf16 step (autocast, docs/PRECISION.md): the operands a
// bf16 step gives a float32 weight's linear layer, with the weight's values dequantized tile by
// tile. x (or gy) and each dequantized value are rounded to bf16 as autocast rounds them, and the
// bf16 GEMM (AMX or AVX512-BF16 through oneDNN where the CPU has them) sums in float32: the
// arithmetic of a bf16 LoRA step on the dequantized base, up to summation order. No dense copy of W
// is held: one tile of rows at a time, as the float32 tiles (quant_linear.cc).
#include <algorithm>
#include <cstring>
#include <vector>

#include "bf16.h"
#include "quant_dot.h"
#include "threads.h"

namespace sc {

namespace {

/**
 * Rows of W a bf16 tile holds: about 2^20 weights (6 MB of scratch with its float32 staging), at
 * least kQuantTileRows. A product with few rows of W per tile runs the GEMM at a short contraction
 * (the input gradient's) or reads x again per tile (the forward): small tiles kept the matrix units idle.
 */
int64_t bf16TileRows(int64_t N, int64_t K) {
  constexpr int64_t kTileWeights = int64_t{1} << 20;
  return std::min(N, std::max(kQuantTileRows, kTileWeights / K / 16 * 16));
}

thread_local std::vector<float> t_staging;
thread_local std::vector<uint16_t> t_tile, t_operand;
thread_local std::vector<float> t_out;

template <typename T>
T* grown(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

/** Rows [n0, n0 + rows) of W as bf16: each dequantized float32 value rounded (as autocast rounds a float32 weight). */
void dequantizeTileBf16(QFmt f, const uint8_t* w, int64_t K, int64_t n0, int64_t rows, uint16_t* tile) {
  float* staging = grown(t_staging, rows * K);
  parallelRange(rows, std::max<int64_t>(1, 16384 / K), [&](int64_t lo, int64_t hi) {
    dequantizeRows(f, w, K, n0 + lo, hi - lo, staging + lo * K);
    // x·1 is x: the scaled rounding is the plain one, on this thread.
    toBf16Scaled(staging + lo * K, 1.0f, tile + lo * K, (hi - lo) * K);
  });
}

}  // namespace

void quantLinearBf16(QFmt f, const uint8_t* w, const float* x, int64_t M, int64_t N, int64_t K, float* y, const float* bias) {
  uint16_t* xb = grown(t_operand, M * K);
  toBf16(x, xb, M * K);
  const int64_t T = bf16TileRows(N, K);
  uint16_t* tile = grown(t_tile, T * K);
  // One tile covers every column of y: the GEMM writes y itself; else each tile's columns go in after.
  float* out = T == N ? y : grown(t_out, M * T);
  for (int64_t n0 = 0; n0 < N; n0 += T) {
    const int64_t rows = std::min(T, N - n0);
    dequantizeTileBf16(f, w, K, n0, rows, tile);
    GemmBf16 g;
    g.transB = true;
    g.M = M;
    g.N = rows;
    g.K = K;
    g.A = xb;
    g.B = tile;
    g.C = out;
    g.bias = bias ? bias + n0 : nullptr;
    gemmBf16(g);
    if (out != y) {
      parallelRange(M, std::max<int64_t>(1, 16384 / rows), [&](int64_t lo, int64_t hi) {
        for (int64_t m = lo; m < hi; m++) std::memcpy(y + m * N + n0, out + m * rows, static_cast<size_t>(rows) * sizeof(float));
      });
    }
  }
}

void quantLinearInputGradBf16(QFmt f, const uint8_t* w, const float* gy, int64_t M, int64_t N, int64_t K, float* gx) {
  const int64_t T = bf16TileRows(N, K);
  uint16_t* tile = grown(t_tile, T * K);
  uint16_t* gyb = grown(t_operand, M * T);
  for (int64_t n0 = 0; n0 < N; n0 += T) {
    const int64_t rows = std::min(T, N - n0);
    dequantizeTileBf16(f, w, K, n0, rows, tile);
    // gy's columns of this tile, rounded as a bf16 step rounds gy, packed [M, rows] for the GEMM.
    parallelRange(M, std::max<int64_t>(1, 16384 / rows), [&](int64_t lo, int64_t hi) {
      for (int64_t m = lo; m < hi; m++) toBf16Scaled(gy + m * N + n0, 1.0f, gyb + m * rows, rows);
    });
    GemmBf16 g;
    g.M = M;
    g.N = K;
    g.K = rows;
    g.beta = 1;
    g.A = gyb;
    g.B = tile;
    g.C = gx;
    gemmBf16(g);
  }
}

}  // namespace sc
