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
#include "simd.h"

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

template <QFmt F>
void rowsOf(const uint8_t* w, int64_t K, int64_t row0, int64_t rows, float* out) {
#if defined(__x86_64__) && defined(SC_AVX2_TARGET)
  if (cpuFeatures().avx2) return rowsAvx2<F>(w, K, row0, rows, out);
#endif
  rowsBaseline<F>(w, K, row0, rows, out);
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
    case QFmt::Count: return;
  }
}

}  // namespace sc
