// The quantized products of many rows of x (an inference prefill: more rows than quant_rows_avx512.cc
// takes) on 512-bit AVX512-VNNI as integer GEMMs, for Q8_0, Q4_0 and Q5_0: x quantized per block of
// 32 (quantizeActivations, as at decode), W's rows repacked 16 at a time into a tile of unsigned
// codes where one 32-bit lane is one row of W, and each vpdpbusd multiplies four codes of 16 rows with
// the same four codes of x, broadcast: 64 products an instruction, no horizontal sum at the end.
// (The dequantized tiles + fp32 GEMM top out at this core's fp32 FMA peak; llama.cpp's prefill over
// the same file multiplies int8 too.) A tile is built once per product in the thread's scratch and
// met by every row of x, so its cost is that of one pass over W.
//
// Tile of rows [n0, n0 + 16), per block b of 32 weights: 8 steps of 64 bytes, step s holding codes
// 4s..4s+3 of each row j at bytes 4j..4j+3 (unsigned: Q4_0 c + 8, Q5_0 c + 16, Q8_0 c + 128), then
// the 16 rows' scales d_w as float32. Rows past N have codes and scales 0. A sum starts at
// −centre·Σq_x over the block, which takes the centre back out: exact in int32 (|c·q| ≤ 255·127,
// 32 terms). y[m, n] = Σ_b float(sum_b)·(d_w,b·d_x,b) in block order, one float32 rounding a product
// and a sum: a row's value depends on neither the tile it lies in nor the thread count.
#include "quant_tiles_int8.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "quant_blocks.h"
#include "threads.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define SC_INT8_TILES_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,f16c,fma")))

namespace sc {
namespace {

#define SC_QDOT_TARGET SC_INT8_TILES_TARGET
#include "quant_unpack_x86.h"
#undef SC_QDOT_TARGET

constexpr int kTileRowsInt8 = 16;
constexpr int kBlockTileBytes = 32 * kTileRowsInt8;  // one block of 16 rows: 8 steps × 64 bytes
/** Rows of x one pass over a tile holds (one accumulator each; eight independent vpdpbusd chains). */
constexpr int kRowsPerPass = 8;

constexpr int centreOf(QFmt f) { return f == QFmt::Q8_0 ? 128 : f == QFmt::Q4_0 ? 8 : 16; }

/** A thread's tile: codes (from a 64-byte boundary of `bytes`, for the loads) and scales. */
struct Int8Tile {
  std::vector<uint8_t> bytes;
  uint8_t* codes = nullptr;   // blocks × kBlockTileBytes
  std::vector<float> scales;  // blocks × 16

  void size(int64_t blocks) {
    const size_t n = static_cast<size_t>(blocks * kBlockTileBytes);
    if (bytes.size() < n + 64) bytes.resize(n + 64);
    codes = bytes.data() + (64 - reinterpret_cast<uintptr_t>(bytes.data()) % 64) % 64;
    scales.assign(static_cast<size_t>(blocks * kTileRowsInt8), 0.0f);
  }
};

/**
 * Rows [n0, n0 + rows) of W (rows ≤ 16) into the tile's layout (the header's): each block of the 16
 * rows unpacked to 16 × 32 unsigned codes, then step s of the tile gathered as the rows' dword s.
 */
template <QFmt F>
SC_INT8_TILES_TARGET void buildTile(const uint8_t* W, int64_t K, int64_t n0, int rows, Int8Tile& t) {
  const int64_t blocks = K / 32, rowBytes = blocks * qBlockBytes(F);
  t.size(blocks);
  alignas(64) int8_t codes[kTileRowsInt8][32] = {};
  const __m512i rowStarts = _mm512_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120);
  const __m512i centre = _mm512_set1_epi8(static_cast<char>(centreOf(F)));
  float a[2], off[2];
  for (int64_t b = 0; b < blocks; b++) {
    for (int j = 0; j < rows; j++) {
      unpackBlock<F, Unpack>(W + (n0 + j) * rowBytes + b * qBlockBytes(F), codes[j], a, off);
      t.scales[static_cast<size_t>(b * kTileRowsInt8 + j)] = a[0];
    }
    for (int i = 0; i < 8; i++) {
      __m512i* at = reinterpret_cast<__m512i*>(&codes[0][0]) + i;
      _mm512_store_si512(at, _mm512_add_epi8(_mm512_load_si512(at), centre));
    }
    uint8_t* tile = t.codes + b * kBlockTileBytes;
    for (int s = 0; s < 8; s++) {
      _mm512_store_si512(tile + 64 * s, _mm512_i32gather_epi32(_mm512_add_epi32(rowStarts, _mm512_set1_epi32(s)), &codes[0][0], 4));
    }
    // Rows past `rows` were never unpacked: their codes stay the centre's (scales 0, never stored).
    for (int j = rows; j < kTileRowsInt8; j++) std::fill(codes[j], codes[j] + 32, int8_t{0});
  }
}

/**
 * y[m·N + n0 + j] (j < width) for R rows of x from row m0: the tile against each row's blocks, the
 * sums starting at start[m·blocks + b] (−centre·Σq_x), scaled by d_w·d_x into one accumulator a row.
 */
template <int R>
SC_INT8_TILES_TARGET void tileRows(const Int8Tile& t, int64_t blocks, const int8_t* xq, const float* xd, const int32_t* start, int64_t K,
                                   int64_t m0, float* y, int64_t N, int64_t n0, int width, const float* bias) {
  __m512 acc[R];
  for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; b++) {
    const uint8_t* w = t.codes + b * kBlockTileBytes;
    const __m512 dw = _mm512_loadu_ps(t.scales.data() + b * kTileRowsInt8);
    for (int r = 0; r < R; r++) {
      const int64_t m = m0 + r;
      const int32_t* x4 = reinterpret_cast<const int32_t*>(xq + m * K + 32 * b);
      __m512i sum = _mm512_set1_epi32(start[m * blocks + b]);
      for (int s = 0; s < 8; s++) sum = _mm512_dpbusd_epi32(sum, _mm512_load_si512(w + 64 * s), _mm512_set1_epi32(x4[s]));
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw, _mm512_set1_ps(xd[m * blocks + b])), acc[r]);
    }
  }
  const __mmask16 keep = static_cast<__mmask16>((1u << width) - 1);
  const __m512 b16 = bias ? _mm512_maskz_loadu_ps(keep, bias + n0) : _mm512_setzero_ps();
  for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(y + (m0 + r) * N + n0, keep, _mm512_add_ps(acc[r], b16));
}

SC_INT8_TILES_TARGET void tileAllRows(const Int8Tile& t, int64_t blocks, const int8_t* xq, const float* xd, const int32_t* start, int64_t M, int64_t K,
                                      float* y, int64_t N, int64_t n0, int width, const float* bias) {
  int64_t m = 0;
  for (; m + kRowsPerPass <= M; m += kRowsPerPass) tileRows<kRowsPerPass>(t, blocks, xq, xd, start, K, m, y, N, n0, width, bias);
  switch (M - m) {
    case 7: return tileRows<7>(t, blocks, xq, xd, start, K, m, y, N, n0, width, bias);
    case 6: return tileRows<6>(t, blocks, xq, xd, start, K, m, y, N, n0, width, bias);
    case 5: return tileRows<5>(t, blocks, xq, xd, start, K, m, y, N, n0, width, bias);
    case 4: return tileRows<4>(t, blocks, xq, xd, start, K, m, y, N, n0, width, bias);
    case 3: return tileRows<3>(t, blocks, xq, xd, start, K, m, y, N, n0, width, bias);
    case 2: return tileRows<2>(t, blocks, xq, xd, start, K, m, y, N, n0, width, bias);
    case 1: return tileRows<1>(t, blocks, xq, xd, start, K, m, y, N, n0, width, bias);
    default: return;
  }
}

/** Products per thread before the tiles split over the threads (as the fp32 tiles': kTileGrainFlops there). */
constexpr int64_t kInt8TileGrainProducts = 1'000'000;

template <QFmt F>
void product(const int8_t* xq, const float* xd, int64_t M, const uint8_t* W, int64_t N, int64_t K, const float* bias, float* y) {
  const int64_t blocks = K / 32, tiles = (N + kTileRowsInt8 - 1) / kTileRowsInt8;
  std::vector<int32_t> start(static_cast<size_t>(M * blocks));
  for (int64_t i = 0; i < M * blocks; i++) {
    int32_t sum = 0;
    for (int j = 0; j < 32; j++) sum += xq[32 * i + j];
    start[static_cast<size_t>(i)] = -centreOf(F) * sum;
  }
  const int64_t grain = std::max<int64_t>(1, kInt8TileGrainProducts / std::max<int64_t>(1, M * kTileRowsInt8 * K));
  parallelRange(tiles, grain, [&](int64_t lo, int64_t hi) {
    thread_local Int8Tile tile;
    for (int64_t i = lo; i < hi; i++) {
      const int64_t n0 = i * kTileRowsInt8;
      const int width = static_cast<int>(std::min<int64_t>(kTileRowsInt8, N - n0));
      buildTile<F>(W, K, n0, width, tile);
      tileAllRows(tile, blocks, xq, xd, start.data(), M, K, y, N, n0, width, bias);
    }
  });
}

}  // namespace

bool quantTilesInt8Handles(QFmt f) { return f == QFmt::Q8_0 || f == QFmt::Q4_0 || f == QFmt::Q5_0; }

void quantTilesInt8(QFmt f, const int8_t* xq, const float* xd, int64_t M, const uint8_t* W, int64_t N, int64_t K, const float* bias, float* y) {
  if (f == QFmt::Q8_0) product<QFmt::Q8_0>(xq, xd, M, W, N, K, bias, y);
  else if (f == QFmt::Q4_0) product<QFmt::Q4_0>(xq, xd, M, W, N, K, bias, y);
  else if (f == QFmt::Q5_0) product<QFmt::Q5_0>(xq, xd, M, W, N, K, bias, y);
}

}  // namespace sc

#else
namespace sc {
bool quantTilesInt8Handles(QFmt) { return false; }
void quantTilesInt8(QFmt, const int8_t*, const float*, int64_t, const uint8_t*, int64_t, int64_t, const float*, float*) {}
}  // namespace sc
#endif
