// The thin bf16 product x·Wᵀ on AMX tiles, for a few rows of x (decode batches): W [N, K] row-major
// read once, in place, as the A operand; x's rows as the B operand.
//
// AVX512-BF16 (gemv_bf16.cc) makes 32 multiply-adds an instruction: at 8 rows of x a SmolLM2-135M
// step's 848 M of them took 28.5 ms where oneDNN's packed product took 19.6 (bench/gemv_bf16.ts,
// one thread, loaded machine), so past two rows that kernel is bound by arithmetic, not by memory.
// An AMX tile product makes 16 × M × 32 in one instruction. Its A tile is 16 rows of 32 bf16 at any
// row stride: 16 rows of W and 32 of their K, read where they lie (no packed copy of W). Its B tile
// wants pairs of K interleaved (VNNI): with Bᵀ = x that is x's [M, K/2] pairs transposed, laid out
// once a call (M × K values, a few KB). So Cᵀ [16 rows of W, M] = W-tile · x-tile a block, and the
// next block's bytes are prefetched into L2 while this one computes: a block's rows are 16 streams
// of only K·2 bytes each (1,152 at K = 576), too short for the hardware prefetcher to follow.
// The products are exact in float32, the sums float32 (in the tile unit's order: a float32
// rounding from the other kernels').
#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu_features.h"
#include "gemv_bf16.h"
#include "threads.h"

#if defined(__x86_64__) && defined(__linux__) && \
    ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11) || (defined(__clang__) && __clang_major__ >= 12))
#define SC_HAVE_AMX_THIN 1
#include <immintrin.h>
#else
#define SC_HAVE_AMX_THIN 0
#endif

namespace sc {

namespace {

#if SC_HAVE_AMX_THIN
/** ldtilecfg's 64-byte operand (palette 1). */
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t startRow = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

constexpr int kTileRows = 16;  // rows of W in a tile (and pairs of K in x's)
constexpr int kTileK = 32;     // bf16 of K in a tile row (64 bytes)
// The tiles: tmm0 the sums Cᵀ, tmm1 W's rows, tmm2 x's (GCC's tile intrinsics take their numbers literally).
constexpr int kSumTile = 0, kWTile = 1, kXTile = 2;

/** The tiles for M rows of x and `rows` rows of W (16, or a last block's fewer). */
TileConfig tileConfig(int64_t M, int rows) {
  TileConfig c;
  c.rows[kSumTile] = static_cast<uint8_t>(rows);
  c.colsb[kSumTile] = static_cast<uint16_t>(M * 4);
  c.rows[kWTile] = static_cast<uint8_t>(rows);
  c.colsb[kWTile] = kTileK * 2;
  c.rows[kXTile] = kTileRows;
  c.colsb[kXTile] = static_cast<uint16_t>(M * 4);
  return c;
}

/** x [M, K] as B tiles: its pairs of K transposed, xt[k/2][m] = x[m][k/2] (a pair as 32 bits). */
void layOutX(const GemmBf16& t, std::vector<uint32_t>& xt) {
  const int64_t M = t.M, pairs = t.K / 2;
  xt.resize(static_cast<size_t>(M * pairs));
  for (int64_t m = 0; m < M; m++) {
    const uint16_t* row = t.A + m * t.K;
    for (int64_t p = 0; p < pairs; p++) std::memcpy(&xt[p * M + m], row + 2 * p, 4);
  }
}

/** C[m, n0 + i] for a block's `rows` rows of W from Cᵀ (sums [rows][M]): alpha·sum, plus the bias or beta·C. */
void storeBlock(const GemmBf16& t, int64_t n0, int rows, const float* sums) {
  for (int64_t m = 0; m < t.M; m++) {
    float* c = t.C + m * t.N + n0;
    for (int i = 0; i < rows; i++) {
      const float add = t.bias ? t.bias[n0 + i] : (t.beta != 0 ? t.beta * c[i] : 0.0f);
      c[i] = t.alpha * sums[i * t.M + m] + add;
    }
  }
}

/**
 * Rows [n0, n0 + rows) of W against x's tiles (the configuration in force has `rows` rows), the next
 * block's lines prefetched into L2 spread evenly over this block's chunks of K, short of `end`.
 */
__attribute__((target("amx-tile,amx-bf16")))
void block(const GemmBf16& t, const uint32_t* xt, int64_t n0, int rows, const char* end, float* sums) {
  const int64_t K = t.K, chunks = K / kTileK;
  const uint16_t* w = t.B + n0 * K;
  const char* next = reinterpret_cast<const char*>(w + rows * K);
  const int64_t linesPerChunk = (rows * K * 2 / 64 + chunks - 1) / chunks;
  _tile_zero(0);
  for (int64_t c = 0; c < chunks; c++) {
    for (int64_t l = c * linesPerChunk; l < (c + 1) * linesPerChunk; l++) {
      const char* p = next + l * 64;
      if (p < end) _mm_prefetch(p, _MM_HINT_T1);
    }
    _tile_loadd(2, xt + c * kTileRows * t.M, t.M * 4);
    _tile_loadd(1, w + c * kTileK, K * 2);
    _tile_dpbf16ps(0, 1, 2);
  }
  _tile_stored(0, sums, t.M * 4);
  storeBlock(t, n0, rows, sums);
}

/** Rows [lo, hi) of W: blocks of 16, then one of the rows left (its own tile configuration). */
__attribute__((target("amx-tile,amx-bf16")))
void rows(const GemmBf16& t, const uint32_t* xt, int64_t lo, int64_t hi) {
  // Prefetches stop at this chunk's last row of W: what lies past it is another thread's, or not W.
  const char* end = reinterpret_cast<const char*>(t.B + hi * t.K);
  alignas(64) float sums[kTileRows * kTileRows];
  const TileConfig full = tileConfig(t.M, kTileRows);
  _tile_loadconfig(&full);
  int64_t n = lo;
  for (; n + kTileRows <= hi; n += kTileRows) block(t, xt, n, kTileRows, end, sums);
  if (n < hi) {
    const TileConfig last = tileConfig(t.M, static_cast<int>(hi - n));
    _tile_loadconfig(&last);
    block(t, xt, n, static_cast<int>(hi - n), end, sums);
  }
  _tile_release();
}
#endif

constexpr int64_t kRowGrain = 256;  // rows of W per thread before the product forks

}  // namespace

bool thinBf16ProductAmx(const GemmBf16& t) {
#if SC_HAVE_AMX_THIN
  if (t.M < 1 || t.M > kTileRows || t.K < kTileK || t.K % kTileK != 0 || !cpuFeatures().amxBf16) return false;
  static thread_local std::vector<uint32_t> xt;
  layOutX(t, xt);
  const uint32_t* x = xt.data();
  // Blocks of 16 rows per chunk, so a thread's rows start on a block (each thread configures its own tiles).
  parallelRange((t.N + kTileRows - 1) / kTileRows, kRowGrain / kTileRows,
                [&](int64_t lo, int64_t hi) { rows(t, x, lo * kTileRows, std::min(t.N, hi * kTileRows)); });
  return true;
#else
  (void)t;
  return false;
#endif
}

}  // namespace sc
