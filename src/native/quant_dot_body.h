// The integer path's loop, one body for every ISA (included inside an anonymous namespace by
// quant_dot_generic.cc, quant_dot_x86.cc (once for AVX2, once for AVX512-VNNI) and quant_dot_neon.cc, after each
// defines SC_QDOT_TARGET, its target attribute, and `Isa`: an accumulator type and
//   Acc zero(); Acc dot32(Acc, const int8_t* w, const int8_t* x, float a0, float a1); float sum(Acc)
// where dot32 adds a0·Σ_{j<16} w_j·x_j + a1·Σ_{16≤j<32} w_j·x_j, the sums exact in int32), and
// `Unpack`: quant_blocks.h's ScalarUnpack or the ISA's own nibble and fifth-bit steps).
//
// For each output column n, W's row is walked block by block: the block's codes, scales and
// offsets are unpacked once (quant_blocks.h, vectorised by the compiler for this ISA) and then
// multiplied with every row of x's quantized block (at most kQuantDotChunk rows), so the weight is
// read once per product whatever M. With x = d_x·q_x per 32 values, a row's output is
//   Σ_blocks Σ_16 [ a·d_x·Σ c·q_x + b·(d_x·Σ q_x) ]  =  Σ_k ŵ_k·x̂_k
// (ŵ = a·c + b, the weight; x̂ = d_x·q_x) up to float32 rounding of the scales and sums.
// Included after quant_dot.h.

template <QFmt F>
SC_QDOT_TARGET void dotRows(const QuantDot& t, int64_t n0, int64_t n1) {
  constexpr int BW = qBlockWeights(F), BB = qBlockBytes(F);
  constexpr bool OFF = qHasOffset(F);
  const int64_t K = t.K, M = t.M, blocks = K / BW, rowBytes = blocks * BB;
  alignas(64) int8_t c[BW];
  float a[BW / 16], off[BW / 16];
  typename Isa::Acc acc[kQuantDotChunk];
  float offAcc[kQuantDotChunk];
  for (int64_t n = n0; n < n1; n++) {
    for (int64_t m = 0; m < M; m++) {
      acc[m] = Isa::zero();
      offAcc[m] = 0.0f;
    }
    const uint8_t* wr = t.W + n * rowBytes;
    for (int64_t blk = 0; blk < blocks; blk++) {
      unpackBlock<F, Unpack>(wr + blk * BB, c, a, off);
      const int64_t k0 = blk * BW;
      for (int64_t m = 0; m < M; m++) {
        const int8_t* xq = t.xq + m * K + k0;
        const float* xd = t.xd + (m * K + k0) / 32;
        typename Isa::Acc s = acc[m];
        for (int ch = 0; ch < BW / 32; ch++) s = Isa::dot32(s, c + 32 * ch, xq + 32 * ch, a[2 * ch] * xd[ch], a[2 * ch + 1] * xd[ch]);
        acc[m] = s;
        if constexpr (OFF) {
          const float* xs = t.xs + (m * K + k0) / 16;
          float o = 0.0f;
          for (int g = 0; g < BW / 16; g++) o += off[g] * xs[g];
          offAcc[m] += o;
        }
      }
    }
    const float b = t.bias ? t.bias[n] : 0.0f;
    for (int64_t m = 0; m < M; m++) t.y[m * t.N + n] = (Isa::sum(acc[m]) + offAcc[m]) + b;
  }
}

SC_QDOT_TARGET void dotRowsAny(const QuantDot& t, int64_t n0, int64_t n1) {
  switch (t.fmt) {
    case QFmt::Q8_0: return dotRows<QFmt::Q8_0>(t, n0, n1);
    case QFmt::Q4_0: return dotRows<QFmt::Q4_0>(t, n0, n1);
    case QFmt::Q4_1: return dotRows<QFmt::Q4_1>(t, n0, n1);
    case QFmt::Q5_0: return dotRows<QFmt::Q5_0>(t, n0, n1);
    case QFmt::Q5_1: return dotRows<QFmt::Q5_1>(t, n0, n1);
    case QFmt::Q4_K: return dotRows<QFmt::Q4_K>(t, n0, n1);
    case QFmt::Q5_K: return dotRows<QFmt::Q5_K>(t, n0, n1);
    case QFmt::Q6_K: return dotRows<QFmt::Q6_K>(t, n0, n1);
    case QFmt::Mlx4: return dotRows<QFmt::Mlx4>(t, n0, n1);
    case QFmt::Mlx8: return dotRows<QFmt::Mlx8>(t, n0, n1);
    case QFmt::Mlx4F16: return dotRows<QFmt::Mlx4F16>(t, n0, n1);
    case QFmt::Mlx8F16: return dotRows<QFmt::Mlx8F16>(t, n0, n1);
    default: return;
  }
}
