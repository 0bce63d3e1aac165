// bfloat16 conversion and compute (docs/PRECISION.md). A bf16 value is the top half of a float32;
// every backend rounds the same way: nearest, ties to even, NaN kept quiet, float32 denormals to a
// signed zero (as AVX512-BF16's vcvtneps2bf16, which oneDNN's reorders use where present).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace sc {

inline uint16_t bf16Bits(uint32_t u) {
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  if (abs < 0x00800000u) return static_cast<uint16_t>((u >> 16) & 0x8000u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/** f rounded to bf16 (bf16Bits of its bits). */
inline uint16_t bf16Of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return bf16Bits(u);
}

/** A bf16 value widened to float32 (exact). */
inline float widenBf16(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/** out[i] = bf16(x[i]) for i < n (threaded over large n). */
void toBf16(const float* x, uint16_t* out, int64_t n);
/**
 * out[i] = bf16(x[i] · k) for i < n on the calling thread (the float32 product rounded, exactly as
 * scaling then toBf16 would): a row loop's normalise-and-round in one pass.
 */
void toBf16Scaled(const float* x, float k, uint16_t* out, int64_t n);
/** out[i] = float(x[i]) for i < n (exact). */
void fromBf16(const uint16_t* x, float* out, int64_t n);

/** C_b = alpha op(A_b) op(B_b) + beta C_b with bf16 A and B (packed: lda = K, or M transposed), float32 C. */
struct GemmBf16 {
  bool transA = false, transB = false;
  int64_t M = 0, N = 0, K = 0;
  float alpha = 1, beta = 0;
  const uint16_t* A = nullptr;
  const uint16_t* B = nullptr;
  float* C = nullptr;
  const float* bias = nullptr;
  int64_t strideA = 0, strideB = 0, strideC = 0, batch = 1;
  int64_t lda() const { return transA ? M : K; }
  int64_t ldb() const { return transB ? K : N; }
};

/** The bf16 GEMM (oneDNN's matmul where it has a real kernel, else float32 over widened operands). */
void gemmBf16(const GemmBf16& g);

/** A bf16 operand widened to a float32 scratch (the fallback when no bf16 primitive runs). */
std::vector<float> widened(const uint16_t* x, int64_t n);

}  // namespace sc
