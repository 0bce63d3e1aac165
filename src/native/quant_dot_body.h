// The integer path's loop, one body for every ISA (included inside an anonymous namespace by
// quant_dot_generic.cc, quant_dot_x86.cc (once for AVX2, once for AVX512-VNNI) and quant_dot_neon.cc, after each
// defines SC_QDOT_TARGET, its target attribute, and `Isa`: an accumulator type and
//   Acc zero(); Acc dot32(Acc, const int8_t* w, const int8_t* x, float a0, float a1); float sum(Acc)
// where dot32 adds a0·Σ_{j<16} w_j·x_j + a1·Σ_{16≤j<32} w_j·x_j, the sums exact in int32, and
// dot32one(Acc, w, x, float s) the same with a0 = a1 = s), and
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
#pragma omp simd reduction(+ : o)
          for (int g = 0; g < BW / 16; g++) o += off[g] * xs[g];
          offAcc[m] += o;
        }
      }
    }
    const float b = t.bias ? t.bias[n] : 0.0f;
    for (int64_t m = 0; m < M; m++) t.y[m * t.N + n] = (Isa::sum(acc[m]) + offAcc[m]) + b;
  }
}

/**
 * One block's codes for the product: Q8_0's are its bytes as they lie (no copy), every other
 * format's unpacked into c; a and off as unpackBlock gives them.
 */
template <QFmt F>
SC_QDOT_TARGET inline const int8_t* blockCodes(const uint8_t* src, int8_t* c, float* a, float* off) {
  if constexpr (F == QFmt::Q8_0) {
    a[0] = a[1] = Unpack::half(le16(src));
    return reinterpret_cast<const int8_t*>(src + 2);
  } else {
    unpackBlock<F, Unpack>(src, c, a, off);
    return c;
  }
}

/**
 * dotRows for one row of x (batch-1 decode): the accumulators live in registers, in two chains
 * (even and odd 32-weight chunks) so that consecutive multiply-adds do not wait on each other. With
 * them in dotRows' arrays, each chunk's add waited on the previous one's store and reload.
 */
template <QFmt F>
SC_QDOT_TARGET void dotRow1(const QuantDot& t, int64_t n0, int64_t n1) {
  constexpr int BW = qBlockWeights(F), BB = qBlockBytes(F), CH = BW / 32;
  constexpr bool OFF = qHasOffset(F);
  const int64_t K = t.K, blocks = K / BW, rowBytes = blocks * BB;
  alignas(64) int8_t c0[BW], c1[BW];
  float a0[BW / 16], a1[BW / 16], off0[BW / 16], off1[BW / 16];
  for (int64_t n = n0; n < n1; n++) {
    typename Isa::Acc even = Isa::zero(), odd = Isa::zero();
    float offSum = 0.0f;
    const uint8_t* wr = t.W + n * rowBytes;
    // The offsets' term of one block (the affine formats): Σ_g off_g · d_x·Σq_x over its groups of 16.
    auto offsets = [&](const float* off, int64_t blk) {
      if constexpr (OFF) {
        const float* xs = t.xs + blk * BW / 16;
        float o = 0.0f;
#pragma omp simd reduction(+ : o)
        for (int g = 0; g < BW / 16; g++) o += off[g] * xs[g];
        offSum += o;
      }
    };
    if constexpr (CH == 1) {
      // 32-weight blocks: even and odd blocks take the two chains.
      int64_t blk = 0;
      for (; blk + 1 < blocks; blk += 2) {
        const int8_t* w0 = blockCodes<F>(wr + blk * BB, c0, a0, off0);
        const int8_t* w1 = blockCodes<F>(wr + (blk + 1) * BB, c1, a1, off1);
        const float d0 = t.xd[blk], d1 = t.xd[blk + 1];
        even = Isa::dot32one(even, w0, t.xq + blk * 32, a0[0] * d0);
        odd = Isa::dot32one(odd, w1, t.xq + (blk + 1) * 32, a1[0] * d1);
        offsets(off0, blk);
        offsets(off1, blk + 1);
      }
      if (blk < blocks) {
        const int8_t* w0 = blockCodes<F>(wr + blk * BB, c0, a0, off0);
        even = Isa::dot32one(even, w0, t.xq + blk * 32, a0[0] * t.xd[blk]);
        offsets(off0, blk);
      }
    } else {
      for (int64_t blk = 0; blk < blocks; blk++) {
        const int8_t* w = blockCodes<F>(wr + blk * BB, c0, a0, off0);
        const int8_t* xq = t.xq + blk * BW;
        const float* xd = t.xd + blk * CH;
        for (int ch = 0; ch < CH; ch += 2) {
          if constexpr (qScalePer16(F)) {
            even = Isa::dot32(even, w + 32 * ch, xq + 32 * ch, a0[2 * ch] * xd[ch], a0[2 * ch + 1] * xd[ch]);
            odd = Isa::dot32(odd, w + 32 * ch + 32, xq + 32 * ch + 32, a0[2 * ch + 2] * xd[ch + 1], a0[2 * ch + 3] * xd[ch + 1]);
          } else {  // one per 32 (or more)
            even = Isa::dot32one(even, w + 32 * ch, xq + 32 * ch, a0[2 * ch] * xd[ch]);
            odd = Isa::dot32one(odd, w + 32 * ch + 32, xq + 32 * ch + 32, a0[2 * ch + 2] * xd[ch + 1]);
          }
        }
        offsets(off0, blk);
      }
    }
    const float b = t.bias ? t.bias[n] : 0.0f;
    t.y[n] = (Isa::sum(even) + Isa::sum(odd) + offSum) + b;
  }
}

template <QFmt F>
SC_QDOT_TARGET void dotRowsOf(const QuantDot& t, int64_t n0, int64_t n1) {
  if (t.M == 1) return dotRow1<F>(t, n0, n1);
  return dotRows<F>(t, n0, n1);
}

SC_QDOT_TARGET void dotRowsAny(const QuantDot& t, int64_t n0, int64_t n1) {
  switch (t.fmt) {
    case QFmt::Q8_0: return dotRowsOf<QFmt::Q8_0>(t, n0, n1);
    case QFmt::Q4_0: return dotRowsOf<QFmt::Q4_0>(t, n0, n1);
    case QFmt::Q4_1: return dotRowsOf<QFmt::Q4_1>(t, n0, n1);
    case QFmt::Q5_0: return dotRowsOf<QFmt::Q5_0>(t, n0, n1);
    case QFmt::Q5_1: return dotRowsOf<QFmt::Q5_1>(t, n0, n1);
    case QFmt::Q4_K: return dotRowsOf<QFmt::Q4_K>(t, n0, n1);
    case QFmt::Q5_K: return dotRowsOf<QFmt::Q5_K>(t, n0, n1);
    case QFmt::Q6_K: return dotRowsOf<QFmt::Q6_K>(t, n0, n1);
    case QFmt::Mlx4: return dotRowsOf<QFmt::Mlx4>(t, n0, n1);
    case QFmt::Mlx8: return dotRowsOf<QFmt::Mlx8>(t, n0, n1);
    case QFmt::Mlx4F16: return dotRowsOf<QFmt::Mlx4F16>(t, n0, n1);
    case QFmt::Mlx8F16: return dotRowsOf<QFmt::Mlx8F16>(t, n0, n1);
    // NF4 and F16 have no integer codes (quant_blocks.h qIntegerCodes), and the interleaved formats'
    // rows are not one span each (their kernels are quant_rows8_avx512.cc, quant_rows8_k_avx512.cc):
    // quantLinear never brings them here.
    case QFmt::Nf4:
    case QFmt::F16:
    case QFmt::Q4_0x8:
    case QFmt::Q8_0x8:
    case QFmt::Q5_0x8:
    case QFmt::Q4_Kx8:
    case QFmt::Q6_Kx8:
    case QFmt::Count: return;
  }
}
