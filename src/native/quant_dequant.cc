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

#include "quant_dot.h"

namespace sc {
namespace {

template <QFmt F>
void rowsOf(const uint8_t* w, int64_t K, int64_t row0, int64_t rows, float* out) {
  constexpr int BW = qBlockWeights(F), BB = qBlockBytes(F);
  const int64_t blocks = rows * (K / BW);
  const uint8_t* src = w + row0 * (K / BW) * BB;
  for (int64_t b = 0; b < blocks; b++) dequantizeBlock<F>(src + b * BB, out + b * BW);
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
    default: return;
  }
}

}  // namespace sc
