// Quantized rows → float32, bit for bit as gguf-py (and src/tensor/quant/*.ts) dequantize them: each
// product and sum of quant_blocks.h's dequantizeBlock rounded to float32 on its own. That needs the
// compiler not to fuse a product and the sum after it into one multiply-add (GCC fuses across
// statements by default wherever the target has FMA: arm64 always), hence fp-contract=off for this
// file, which holds every dequantization the addon does (quant_linear.cc's tiles and embedding rows
// call here). The pragma precedes the includes so the inlined block decoders compile under it.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "cpu_features.h"
#include "quant_dot.h"
#include "quant_rows8.h"
#include "simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace sc {
namespace {

/**
 * One block as float32: its integer codes and per-16 scales first (unpackBlock: integers, and
 * scales rounded as dequantizeBlock rounds them), then each weight a·c (+ b), which is
 * dequantizeBlock's arithmetic term for term (q4_k's b is −dmin·m, so p + b is p − ml), in loops the
 * compiler vectorises. MLX's 8-bit groups keep dequantizeBlock (unpackBlock shifts their codes), and
 * so do NF4 (its levels are no integer codes: a table lookup and one product a weight) and F16
 * (a widening a weight).
 */
template <QFmt F>
inline __attribute__((always_inline)) void exactBlock(const uint8_t* src, float* out) {
  if constexpr (F == QFmt::Mlx8 || F == QFmt::Mlx8F16 || !qIntegerCodes(F)) {
    dequantizeBlock<F>(src, out);
  } else {
    constexpr int BW = qBlockWeights(F);
    alignas(64) int8_t c[BW];
    float a[BW / 16], off[BW / 16];
    unpackBlock<F>(src, c, a, off);
    for (int g = 0; g < BW / 16; g++) {
      for (int j = 0; j < 16; j++) {
        const float p = a[g] * static_cast<float>(c[16 * g + j]);
        if constexpr (qHasOffset(F)) out[16 * g + j] = p + off[g];
        else out[16 * g + j] = p;
      }
    }
  }
}

template <QFmt F>
inline __attribute__((always_inline)) void rowsBody(const uint8_t* w, int64_t K, int64_t row0, int64_t rows, float* out) {
  constexpr int BW = qBlockWeights(F), BB = qBlockBytes(F);
  const int64_t blocks = rows * (K / BW);
  const uint8_t* src = w + row0 * (K / BW) * BB;
  for (int64_t b = 0; b < blocks; b++) exactBlock<F>(src + b * BB, out + b * BW);
}

// Compiled twice on x86-64 (simd.h's scheme): for AVX2 and for the baseline; fp-contract is off in both.
template <QFmt F>
void rowsBaseline(const uint8_t* w, int64_t K, int64_t row0, int64_t rows, float* out) { rowsBody<F>(w, K, row0, rows, out); }

#if defined(__x86_64__) && defined(SC_AVX2_TARGET)
template <QFmt F>
__attribute__((target(SC_AVX2_TARGET))) void rowsAvx2(const uint8_t* w, int64_t K, int64_t row0, int64_t rows, float* out) {
  rowsBody<F>(w, K, row0, rows, out);
}
#endif

#if defined(__x86_64__) && defined(SC_AVX2_TARGET)
/**
 * NF4 blocks on AVX2: its levels are a table the compiler looks up a weight at a time (1.5-1.6 G
 * weights/s one thread, half Q8_0's rate, in QLoRA's every tile). Here the table sits in two registers
 * (levels 0-7, 8-15): each 8 codes widen to lanes, both halves are permuted by the code's low 3 bits
 * and its bit 3 picks one, then the one product level · scale a weight: dequantizeBlock's float32
 * arithmetic, bit for bit (5.1-5.3 G weights/s).
 */
__attribute__((target(SC_AVX2_TARGET))) void rowsNf4Avx2(const uint8_t* w, int64_t K, int64_t row0, int64_t rows, float* out) {
  constexpr int BW = qBlockWeights(QFmt::Nf4), BB = qBlockBytes(QFmt::Nf4);
  const __m256 low = _mm256_loadu_ps(kNf4Levels), high = _mm256_loadu_ps(kNf4Levels + 8);
  const __m256i nibble = _mm256_set1_epi32(15);
  const int64_t blocks = rows * (K / BW);
  const uint8_t* src = w + row0 * (K / BW) * BB;
  for (int64_t b = 0; b < blocks; b++, src += BB, out += BW) {
    const __m256 s = _mm256_set1_ps(nf4Scale(src[0]));
    for (int j = 0; j < 32; j += 8) {
      const __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + 1 + j)));
      const __m256i codes[2] = {_mm256_and_si256(bytes, nibble), _mm256_srli_epi32(bytes, 4)};
      for (int half = 0; half < 2; half++) {
        const __m256i c = codes[half];
        // Bit 3 of the code moved to the sign bit: blendv takes `high` there.
        const __m256 pick = _mm256_castsi256_ps(_mm256_slli_epi32(c, 28));
        const __m256 level = _mm256_blendv_ps(_mm256_permutevar8x32_ps(low, c), _mm256_permutevar8x32_ps(high, c), pick);
        _mm256_storeu_ps(out + 32 * half + j, _mm256_mul_ps(level, s));
      }
    }
  }
}
#endif

template <QFmt F>
void rowsOf(const uint8_t* w, int64_t K, int64_t row0, int64_t rows, float* out) {
#if defined(__x86_64__) && defined(SC_AVX2_TARGET)
  if (cpuFeatures().avx2) {
    if constexpr (F == QFmt::Nf4) return rowsNf4Avx2(w, K, row0, rows, out);
    else return rowsAvx2<F>(w, K, row0, rows, out);
  }
#endif
  rowsBaseline<F>(w, K, row0, rows, out);
}

/** An interleaved format's rows (Q4_0x8, Q8_0x8, Q5_0x8, Q4_Kx8, Q6_Kx8): each one's blocks gathered from its group (rows8Row), then the row format's values. */
template <QFmt F>
void rows8Of(const uint8_t* w, int64_t K, int64_t row0, int64_t rows, float* out) {
  thread_local std::vector<uint8_t> row;
  row.resize(static_cast<size_t>(qRowBytes(F, K)));
  for (int64_t r = 0; r < rows; r++) {
    rows8Row(F, w, K, row0 + r, row.data());
    rowsOf<qRowFormat(F)>(row.data(), K, 0, 1, out + r * K);
  }
}

}  // namespace

void dequantizeRows(QFmt f, const uint8_t* w, int64_t K, int64_t row0, int64_t rows, float* out) {
  switch (f) {
    case QFmt::Q8_0: return rowsOf<QFmt::Q8_0>(w, K, row0, rows, out);
    case QFmt::Q4_0: return rowsOf<QFmt::Q4_0>(w, K, row0, rows, out);
    case QFmt::Q4_1: return rowsOf<QFmt::Q4_1>(w, K, row0, rows, out);
    case QFmt::Q5_0: return rowsOf<QFmt::Q5_0>(w, K, row0, rows, out);
    case QFmt::Q5_1: return rowsOf<QFmt::Q5_1>(w, K, row0, rows, out);
    case QFmt::Q4_K: return rowsOf<QFmt::Q4_K>(w, K, row0, rows, out);
    case QFmt::Q5_K: return rowsOf<QFmt::Q5_K>(w, K, row0, rows, out);
    case QFmt::Q6_K: return rowsOf<QFmt::Q6_K>(w, K, row0, rows, out);
    case QFmt::Mlx4: return rowsOf<QFmt::Mlx4>(w, K, row0, rows, out);
    case QFmt::Mlx8: return rowsOf<QFmt::Mlx8>(w, K, row0, rows, out);
    case QFmt::Mlx4F16: return rowsOf<QFmt::Mlx4F16>(w, K, row0, rows, out);
    case QFmt::Mlx8F16: return rowsOf<QFmt::Mlx8F16>(w, K, row0, rows, out);
    case QFmt::Nf4: return rowsOf<QFmt::Nf4>(w, K, row0, rows, out);
    case QFmt::F16: return rowsOf<QFmt::F16>(w, K, row0, rows, out);
    case QFmt::Q4_0x8: return rows8Of<QFmt::Q4_0x8>(w, K, row0, rows, out);
    case QFmt::Q8_0x8: return rows8Of<QFmt::Q8_0x8>(w, K, row0, rows, out);
    case QFmt::Q5_0x8: return rows8Of<QFmt::Q5_0x8>(w, K, row0, rows, out);
    case QFmt::Q4_Kx8: return rows8Of<QFmt::Q4_Kx8>(w, K, row0, rows, out);
    case QFmt::Q6_Kx8: return rows8Of<QFmt::Q6_Kx8>(w, K, row0, rows, out);
    case QFmt::Count: return;
  }
}

}  // namespace sc
