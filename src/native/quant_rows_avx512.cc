// The quantized products of a few rows of x on 512-bit AVX512-VNNI, W unpacked in registers: one
// row (batch-1 decode) of Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, MLX4 and MLX8, and up to
// kQuantDotChunk rows (a batch's decode, a short prefill) of the same, each group of W unpacked once
// for every row.
// quant_dot_body.h's kernels unpack each block to int8 codes in memory and multiply them back with
// the sign trick, one block and one broadcast scale at a time: about 18 instructions per 32
// weights, which bound one row at ~7 weights a cycle, under this core's read bandwidth for 4-bit
// weights. Here a step of four 32-weight blocks (128) takes ~16-20:
//  - the group's bytes come in as two or three 64-byte loads, and one word permute (vpermt2w) each
//    gathers its codes and its four fp16 scales out of the interleaved blocks (Q4_0's scales: a
//    one-source vpermw, all four in the first load);
//  - Q4_0/Q5_0's codes stay unsigned (0..15, 0..31) for vpdpbusd, and their centre (8, 16) is
//    taken off by starting each lane's sum at −centre·Σx (x's sums, computed once per product);
//    Q8_0's codes go in as c + 128 (an xor) with −128·Σx the start, the same trick; Q4_1's and
//    Q5_1's (w = d·q + m) as they are, each block's m times d_x·Σx of each lane added;
//  - x is laid out once per product to match: for the nibble formats the four blocks' low halves
//    then their high halves, so lane 4b..4b+3 of the sums is block b's and one scale vector
//    [s0×4, s1×4, s2×4, s3×4] serves the step (Q8_0's two natural-order halves are folded to that
//    shape with two lane permutes).
// The K-quants take a super-block of 256 a step the same way, MLX a group of 64 (MinsKRowStep,
// Q6KRowStep, MlxRowStep have how).
// A row's last blocks past a whole group are read with masked loads (nothing past the row is
// touched) and meet zeros in x. The sums are exact in int32 (|c|·|q| ≤ 255·127 per product, 8 per
// lane); the result is Σ ŵ·x̂ up to float32 rounding, as every other path of quant_dot*.cc.
#include "quant_dot.h"
#include "cpu_features.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "lane_sums.h"
#include "row_count.h"

#define SC_ROWS_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma")))

namespace sc {
namespace {

constexpr int kGroupBlocks = 4;
constexpr int kGroupWeights = 32 * kGroupBlocks;

/**
 * How far ahead of the bytes a step reads it asks for W's cache lines (rowsOfMany, one row's Q4_K,
 * and on Intel one row's four streams of Q8_0, Q4_0, Q5_0 and Q6_K). Rows are read once per token
 * from memory, and without it the row-at-a-time kernel waited on them: a 130 MB Q4_0 matrix
 * (K = 576) read at 6.7 GB/s, 8.7 with lines 2 KB ahead (an Intel Xeon whose plain streaming read
 * is 14 GB/s; a one-off harness, docs/NATIVE.md). The four streams (fourStreams) differ by vendor:
 *  - on the AMD EPYC (Zen 4) the hardware's prefetchers keep up with them: without the prefetch
 *    instructions Q8_0 ran 1.11-1.22x from memory (but 0.92-0.94x at 896 x 4864) and 1.4x from the
 *    caches, Q6_K 1.13-1.33x, Q4_0 and Q5_0 about level; Q4_K 0.89-0.99x, so it keeps them;
 *  - on an Intel Xeon (Emerald Rapids, no AMX; memchr 13.6 GB/s from memory) they do not: with
 *    lines 2 KB ahead SmolLM2's and Qwen2.5-0.5B's matrices from memory read 1.12-1.35x faster
 *    (Q8_0 12.1 -> 15.2 GB/s at 4864 x 896, past memchr's rate), those the L3 holds 0.84-1.11x, and
 *    a decode step of the GGUF files 1.03-1.37x; 1 KB was as good, 4 KB and hint T1 no better.
 * (/tmp harnesses alternating the builds in one process.)
 */
constexpr int kPrefetchBytes = 2048;

/** Asks for the cache lines of [p, p + bytes) kPrefetchBytes ahead (a prefetch never faults, past W's end too). */
SC_ROWS_TARGET inline void prefetchAhead(const uint8_t* p, int bytes) {
  for (int line = 0; line < bytes; line += 64) _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes + line), _MM_HINT_T0);
}

/** Words (16-bit) of one block and where its scale and codes start: the formats' layouts (quant_blocks.h). */
struct Layout {
  int blockWords, scaleWord, codeWord, highWord, minWord;  // highWord: Q5_0's and Q5_1's fifth bits, minWord Q4_1's and Q5_1's m (−1: none)
};
constexpr Layout layoutOf(QFmt f) {
  return f == QFmt::Q8_0   ? Layout{17, 0, 1, -1, -1}
         : f == QFmt::Q4_0 ? Layout{9, 0, 1, -1, -1}
         : f == QFmt::Q5_0 ? Layout{11, 0, 3, 1, -1}
         : f == QFmt::Q4_1 ? Layout{10, 0, 2, -1, 1}
                           : Layout{12, 0, 4, 2, 1};  // Q5_1
}
/** Q4_1 and Q5_1: w = d·q + m, the block's m times Σ of its x added to the sums' products. */
constexpr bool hasMin(QFmt f) { return f == QFmt::Q4_1 || f == QFmt::Q5_1; }
/** Q5_0 and Q5_1: each code's fifth bit in a word of its own. */
constexpr bool hasFifthBits(QFmt f) { return f == QFmt::Q5_0 || f == QFmt::Q5_1; }

/** The word permutes' indices for a format: codes, scales, (Q5_0, Q5_1) fifth bits and (Q4_1, Q5_1) mins. */
struct Permutes {
  alignas(64) uint16_t codes[64];   // Q8_0: two vectors (blocks 0-1 from A:B, 2-3 from B:C); nibbles: one
  alignas(64) uint16_t scales[32];  // [d0×4, d1×4, d2×4, d3×4] in the low 16 words
  alignas(64) uint16_t high[32];    // Q5_0, Q5_1: block b's qh words at words 8b, 8b+1 (its 128-bit lane)
  alignas(64) uint16_t mins[32];    // Q4_1, Q5_1: [m0×4, m1×4, m2×4, m3×4] in the low 16 words
};

Permutes permutesOf(QFmt f) {
  const Layout l = layoutOf(f);
  Permutes p{};
  for (int b = 0; b < kGroupBlocks; b++) {
    const int base = b * l.blockWords;
    for (int i = 0; i < 4; i++) p.scales[4 * b + i] = static_cast<uint16_t>(base + l.scaleWord);
    if (l.minWord >= 0) {
      for (int i = 0; i < 4; i++) p.mins[4 * b + i] = static_cast<uint16_t>(base + l.minWord);
    }
    if (f == QFmt::Q8_0) {
      // Blocks 0-1 from A:B (words 0-63), blocks 2-3 from B:C (the group's words 32-95).
      const int from = b < 2 ? 0 : 32;
      for (int i = 0; i < 16; i++) p.codes[32 * (b / 2) + 16 * (b % 2) + i] = static_cast<uint16_t>(base + l.codeWord + i - from);
    } else {
      for (int i = 0; i < 8; i++) p.codes[8 * b + i] = static_cast<uint16_t>(base + l.codeWord + i);
      if (l.highWord >= 0) {
        p.high[8 * b] = static_cast<uint16_t>(base + l.highWord);
        p.high[8 * b + 1] = static_cast<uint16_t>(base + l.highWord + 1);
      }
    }
  }
  return p;
}

const Permutes& permutes(QFmt f) {
  static const Permutes q8 = permutesOf(QFmt::Q8_0), q4 = permutesOf(QFmt::Q4_0), q5 = permutesOf(QFmt::Q5_0), q41 = permutesOf(QFmt::Q4_1),
                        q51 = permutesOf(QFmt::Q5_1);
  return f == QFmt::Q8_0 ? q8 : f == QFmt::Q4_0 ? q4 : f == QFmt::Q5_0 ? q5 : f == QFmt::Q4_1 ? q41 : q51;
}

/** Words [0, n) of a 32-word load as a mask (n clamped to 0..32). */
inline __mmask32 firstWords(int n) {
  return n <= 0 ? 0 : n >= 32 ? 0xffffffffu : static_cast<__mmask32>((1u << n) - 1);
}

/** The masks of a group's (up to) three 32-word loads when it holds `blocks` blocks. */
struct GroupMasks {
  __mmask32 a, b, c;
};
GroupMasks masksFor(QFmt f, int blocks) {
  const int words = blocks * layoutOf(f).blockWords;
  return {firstWords(words), firstWords(words - 32), firstWords(words - 64)};
}

/** One group of W unpacked in registers: its codes (two vectors; Q8_0's as c + 128), its fp16 scales and (Q4_1, Q5_1) mins. */
struct GroupCodes {
  __m512i a, b;
  __m256i scales, mins;
};

template <QFmt F>
SC_ROWS_TARGET inline GroupCodes unpackGroup(const uint8_t* p, const GroupMasks& k, const Permutes& ix) {
  const __m512i a = _mm512_maskz_loadu_epi16(k.a, p), b = _mm512_maskz_loadu_epi16(k.b, p + 64);
  // Q4_0's four scales (words 0, 9, 18, 27) all lie in a: a one-source permute (vpermw), which on an
  // Intel Xeon (Emerald Rapids) ran one row's products 1.07-1.14x faster at SmolLM2's shapes and
  // 1.00-1.08x at Qwen2.5-0.5B's than the two-source one (so the shuffle port, where
  // the two-source permute spends two of its three µops, looks to be what limits this kernel).
  const __m512i scaleWords = F == QFmt::Q4_0 ? _mm512_permutexvar_epi16(_mm512_load_si512(ix.scales), a)
                                             : _mm512_permutex2var_epi16(a, _mm512_load_si512(ix.scales), b);
  const __m256i scales = _mm512_castsi512_si256(scaleWords);
  if constexpr (F == QFmt::Q8_0) {
    const __m512i c = _mm512_maskz_loadu_epi16(k.c, p + 128);
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    return {_mm512_xor_si512(_mm512_permutex2var_epi16(a, _mm512_load_si512(ix.codes), b), flip),
            _mm512_xor_si512(_mm512_permutex2var_epi16(b, _mm512_load_si512(ix.codes + 32), c), flip), scales, _mm256_setzero_si256()};
  } else {
    const __m512i packed = _mm512_permutex2var_epi16(a, _mm512_load_si512(ix.codes), b);
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512i lo = _mm512_and_si512(packed, m4), hi = _mm512_and_si512(_mm512_srli_epi16(packed, 4), m4);
    if constexpr (hasFifthBits(F)) {
      // Block b's 32 fifth bits in its lane: byte j of the low codes takes bit j, of the high codes bit 16 + j.
      const __m512i qh = _mm512_permutex2var_epi16(a, _mm512_load_si512(ix.high), b);
      const __m512i lowBytes = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
      const __m512i highBytes = _mm512_add_epi8(lowBytes, _mm512_set1_epi8(2));
      const __m512i bit = _mm512_set1_epi64(static_cast<long long>(0x8040201008040201ULL));
      const __m512i sixteen = _mm512_set1_epi8(16);
      lo = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(_mm512_shuffle_epi8(qh, lowBytes), bit), lo, sixteen);
      hi = _mm512_mask_add_epi8(hi, _mm512_test_epi8_mask(_mm512_shuffle_epi8(qh, highBytes), bit), hi, sixteen);
    }
    const __m256i mins = hasMin(F) ? _mm512_castsi512_si256(_mm512_permutex2var_epi16(a, _mm512_load_si512(ix.mins), b)) : _mm256_setzero_si256();
    return {lo, hi, scales, mins};
  }
}

/** A group's sums Σ c·q with one row of x (its layout: QuantRow1X), lane 4b..4b+3 block b's. */
template <QFmt F>
SC_ROWS_TARGET inline __m512i groupSums(const GroupCodes& w, const int8_t* xq, const int32_t* start) {
  if constexpr (F == QFmt::Q8_0) {
    const __m512i r01 = _mm512_dpbusd_epi32(_mm512_loadu_si512(start), w.a, _mm512_loadu_si512(xq));
    const __m512i r23 = _mm512_dpbusd_epi32(_mm512_loadu_si512(start + 16), w.b, _mm512_loadu_si512(xq + 64));
    // Lanes 0-7 of r01 are block 0's, 8-15 block 1's (r23: 2, 3): pairs summed into 4 lanes a block.
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    return _mm512_add_epi32(_mm512_permutex2var_epi32(r01, even, r23), _mm512_permutex2var_epi32(r01, odd, r23));
  } else {
    const __m512i r = _mm512_dpbusd_epi32(_mm512_loadu_si512(start), w.a, _mm512_loadu_si512(xq));
    return _mm512_dpbusd_epi32(r, w.b, _mm512_loadu_si512(xq + 64));
  }
}

/**
 * acc + one row of x's products with an unpacked group: the sums times the blocks' scales d_w·d_x
 * (and Q4_1's, Q5_1's mins times d_x·Σq_x of each lane's codes of x).
 */
template <QFmt F>
SC_ROWS_TARGET inline __m512 rowStep(__m512 acc, const GroupCodes& w, const __m512 wScales, const QuantRow1X& x, int64_t g) {
  constexpr int lanes = F == QFmt::Q8_0 ? 32 : 16;  // x's start sums per group
  const __m512i sums = groupSums<F>(w, x.q.data() + g * kGroupWeights, x.start.data() + g * lanes);
  acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_mul_ps(wScales, _mm512_loadu_ps(x.d.data() + 16 * g)), acc);
  if constexpr (hasMin(F)) acc = _mm512_fmadd_ps(_mm512_cvtph_ps(w.mins), _mm512_loadu_ps(x.msum.data() + 16 * g), acc);
  return acc;
}

/** acc + one group's products: its sums times the blocks' scales d_w·d_x. */
template <QFmt F>
SC_ROWS_TARGET inline __m512 groupStep(__m512 acc, const uint8_t* p, const GroupMasks& k, const Permutes& ix, const QuantRow1X& x, int64_t g) {
  const GroupCodes w = unpackGroup<F>(p, k, ix);
  return rowStep<F>(acc, w, _mm512_cvtph_ps(w.scales), x, g);
}

/**
 * y[n] = W[n]·x̂ (+ bias[n]) for n in [n0, n1), a row's products summed into one accumulator by
 * `step(acc, row, u)` over its `units` (groups of four blocks, super-blocks): four rows at a time,
 * one from each quarter of [n0, n1). x's layout is read once for the four, four chains are in
 * flight, the four totals are summed together (sum4), and each quarter's rows are read in order
 * (four streams, each as plain to the prefetchers as one row after another); with Ahead each
 * step first asks for its unit's lines kPrefetchBytes ahead (RowStep::kUnitBytes a unit).
 * Measured one thread (AMD EPYC Zen 4, a /tmp harness alternating with the row-at-a-time loop
 * this replaced): 1.2-1.6x at SmolLM2's and Qwen2.5-0.5B's Q4_0, Q8_0 and Q5_0 matrices from
 * memory. A row at a time had been bound by its loads (x's vectors again for every row) and its
 * chain, not by W's bytes; four adjacent rows side by side ran as fast from cache but 1.3-2x
 * slower from memory (their interleaved reads within a page defeat the stream prefetchers); eight
 * streams were no faster.
 */
template <bool Ahead, class RowStep>
SC_ROWS_TARGET void fourStreams(const RowStep& step, const uint8_t* W, int64_t rowBytes, int64_t units, const float* bias, float* y,
                                int64_t n0, int64_t n1) {
  const int64_t quarter = (n1 - n0) / 4;
  for (int64_t i = 0; i < quarter; i++) {
    const uint8_t* wr[4];
    for (int r = 0; r < 4; r++) wr[r] = W + (n0 + r * quarter + i) * rowBytes;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t u = 0; u < units; u++) {
      // Unrolled, the four accumulators stay in registers: GCC kept the loop and acc[] on the stack
      // (Q4_K 1.08x, Q5_K 1.07x, Q6_K 1.21-1.24x; the group steps came out unrolled already).
#pragma GCC unroll 4
      for (int r = 0; r < 4; r++) {
        if constexpr (Ahead) prefetchAhead(wr[r] + u * RowStep::kUnitBytes, RowStep::kUnitBytes);
        acc[r] = step(acc[r], wr[r], u);
      }
    }
    alignas(16) float totals[4];
    _mm_store_ps(totals, sum4(acc[0], acc[1], acc[2], acc[3]));
    for (int r = 0; r < 4; r++) {
      const int64_t n = n0 + r * quarter + i;
      y[n] = totals[r] + (bias ? bias[n] : 0.0f);
    }
  }
  // The last (n1 − n0) mod 4 rows one at a time, their lanes summed in sum4's order (a row's bits
  // do not depend on the rows it was grouped with, so neither on the thread count).
  for (int64_t n = n0 + 4 * quarter; n < n1; n++) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t u = 0; u < units; u++) {
      if constexpr (Ahead) prefetchAhead(W + n * rowBytes + u * RowStep::kUnitBytes, RowStep::kUnitBytes);
      acc = step(acc, W + n * rowBytes, u);
    }
    y[n] = sum1(acc) + (bias ? bias[n] : 0.0f);
  }
}

/** fourStreams, W's lines asked for ahead on Intel only (kPrefetchBytes has why). */
template <class RowStep>
SC_ROWS_TARGET void fourStreamsForVendor(const RowStep& step, const uint8_t* W, int64_t rowBytes, int64_t units, const float* bias, float* y,
                                         int64_t n0, int64_t n1) {
  if (cpuIsIntel()) fourStreams<true>(step, W, rowBytes, units, bias, y, n0, n1);
  else fourStreams<false>(step, W, rowBytes, units, bias, y, n0, n1);
}

/** Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 for fourStreams: a group of four blocks a unit, a row's last partial group masked. */
template <QFmt F>
struct GroupRowStep {
  static constexpr int64_t kUnitBytes = qBlockBytes(F) * kGroupBlocks;
  const QuantRow1X& x;
  const Permutes& ix;
  int64_t whole;  // whole groups in a row
  GroupMasks full, part;
  GroupRowStep(const QuantRow1X& x, int64_t blocks)
      : x(x), ix(permutes(F)), whole(blocks / kGroupBlocks), full(masksFor(F, kGroupBlocks)), part(masksFor(F, static_cast<int>(blocks % kGroupBlocks))) {}
  SC_ROWS_TARGET __m512 operator()(__m512 acc, const uint8_t* row, int64_t g) const {
    return groupStep<F>(acc, row + g * kUnitBytes, g < whole ? full : part, ix, x, g);
  }
};

template <QFmt F>
SC_ROWS_TARGET void rows(const QuantRow1X& x, const uint8_t* W, int64_t K, const float* bias, float* y, int64_t n0, int64_t n1) {
  const int64_t blocks = K / 32;
  fourStreamsForVendor(GroupRowStep<F>(x, blocks), W, blocks * qBlockBytes(F), (blocks + kGroupBlocks - 1) / kGroupBlocks, bias, y, n0, n1);
}

/**
 * rows for M rows of x at once (M ≤ kQuantDotChunk: decode of a batch, a short prefill): each
 * group of W unpacked once and multiplied with every row, one accumulator a row.
 */
template <QFmt F, int M>
SC_ROWS_TARGET void rowsOfMany(const QuantRow1X* xs, const uint8_t* W, int64_t K, const float* bias, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  constexpr int64_t GB = qBlockBytes(F) * kGroupBlocks;
  const int64_t blocks = K / 32, rowBytes = blocks * qBlockBytes(F), groups = (blocks + kGroupBlocks - 1) / kGroupBlocks;
  const int64_t whole = blocks / kGroupBlocks;
  const Permutes& ix = permutes(F);
  const GroupMasks full = masksFor(F, kGroupBlocks), part = masksFor(F, static_cast<int>(blocks % kGroupBlocks));
  for (int64_t n = n0; n < n1; n++) {
    const uint8_t* wr = W + n * rowBytes;
    __m512 acc[M];
    for (int m = 0; m < M; m++) acc[m] = _mm512_setzero_ps();
    for (int64_t g = 0; g < groups; g++) {
      prefetchAhead(wr + g * GB, static_cast<int>(GB));
      const GroupCodes w = unpackGroup<F>(wr + g * GB, g < whole ? full : part, ix);
      const __m512 wScales = _mm512_cvtph_ps(w.scales);
      for (int m = 0; m < M; m++) acc[m] = rowStep<F>(acc[m], w, wScales, xs[m], g);
    }
    for (int m = 0; m < M; m++) y[m * ldy + n] = _mm512_reduce_add_ps(acc[m]) + (bias ? bias[n] : 0.0f);
  }
}

template <QFmt F>
SC_ROWS_TARGET void rowsOfMany(const QuantRow1X* xs, int M, const uint8_t* W, int64_t K, const float* bias, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  if (M == 1) return rows<F>(xs[0], W, K, bias, y, n0, n1);
  withRowCount(M, [&](auto rows) { rowsOfMany<F, decltype(rows)::value>(xs, W, K, bias, y, ldy, n0, n1); });
}

/** Lanes [a×8, b×8] of a 16-lane vector: the 8 lanes of two 32-weight sub-blocks (vpermps indices). */
SC_ROWS_TARGET inline __m512i pairLanes(int a, int b) {
  return _mm512_mask_blend_epi32(0xff00, _mm512_set1_epi32(a), _mm512_set1_epi32(b));
}

/**
 * Q4_K and Q5_K: a super-block of 256 is 8 sub-blocks of 32, w = d·sc_g·q − dmin·m_g (6-bit sc, m).
 * Its 128 bytes of nibbles are two 64-byte loads whose low and high nibbles are sub-blocks [0|2],
 * [1|3], [4|6], [5|7], which x's layout follows; Q5_K's fifth bits (bit g of byte l of its 32 qh
 * bytes: sub-block g's weight l), the 32 bytes in both halves of a vector, are each code vector's
 * mask by one bit test (bits 0|2, 1|3, 4|6, 5|7), added as 16. The 12 bytes of 6-bit scales and
 * mins are unpacked in one 128-bit register into a vector [dmin·m_0..7, d·sc_0..7]; times x's
 * [d_x,g·Σq_x,g ×8, d_x,g ×8] (prepareQ4K) once a super-block, its high half is each sub-block's
 * scale d·sc_g·d_x,g, which each sum vector picks, and the mins' term Σ dmin·m_g·(d_x,g·Σq_x,g)
 * comes off lanes 0-7 of the accumulator (a masked fnmadd of the low halves).
 */
template <QFmt F>
struct MinsKRowStep {
  static_assert(F == QFmt::Q4_K || F == QFmt::Q5_K, "the K-quants with mins");
  static constexpr int64_t kUnitBytes = qBlockBytes(F), kUnitWeights = 256;
  static constexpr int kCodesAt = F == QFmt::Q5_K ? 48 : 16;  // past d, dmin, 12 bytes of scales (and Q5_K's 32 of fifth bits)
  const QuantRow1X& x;
  __m512i m4 = _mm512_set1_epi8(15), sixteen = _mm512_set1_epi8(16);
  /** Code vector i's sub-blocks' scales: lanes 8 + [a×8, b×8] of the scales times x's. */
  __m512i pick[4] = {pairLanes(8, 10), pairLanes(9, 11), pairLanes(12, 14), pairLanes(13, 15)};
  /** Code vector i's fifth bits: sub-block 2i − i % 2 (its low half) and two past it (its high half). */
  __m512i fifth[4] = {bitOfHalves(0, 2), bitOfHalves(1, 3), bitOfHalves(4, 6), bitOfHalves(5, 7)};
  /** scalesMins' shifts and masks: 32-bit lanes [m_0..3, m_4..7, sc_0..3, sc_4..7]. */
  __m128i lowShift = _mm_setr_epi32(0, 4, 0, 0), lowMask = _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f);
  __m128i topMask = _mm_setr_epi32(0, 0x30303030, 0, 0x30303030);
  __m512i halves = _mm512_mask_blend_epi32(0xff00, _mm512_set1_epi32(1), _mm512_setzero_si512());  // [dmin×8, d×8]
  SC_ROWS_TARGET explicit MinsKRowStep(const QuantRow1X& x) : x(x) {}
  SC_ROWS_TARGET static __m512i bitOfHalves(int low, int high) {
    return _mm512_mask_blend_epi64(0xf0, _mm512_set1_epi8(static_cast<char>(1 << low)), _mm512_set1_epi8(static_cast<char>(1 << high)));
  }
  /** A super-block's codes and [dmin·m_0..7, d·sc_0..7]. */
  struct Unit {
    __m512i codes[4];
    __m512 minsScales;
  };
  /**
   * The 8 sc and 8 m of the 12 bytes at s as bytes [m_0..7, sc_0..7]: quant_blocks.h kScalesMins'
   * words, a lane each. Lanes 1 and 3 take their top two bits from w1 and w0 (words 0 and 2 of
   * [w1 w2 w0 w2]): a 64-bit shift left by 30 brings word 2i's bits 6-7 of each byte to bits 4-5
   * of word 2i + 1 (word 2i + 1's own bits land at 30-31, outside the mask).
   */
  SC_ROWS_TARGET __m128i scalesMins(const uint8_t* s) const {
    const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));  // w0 w1 w2, then 4 bytes of codes (unused)
    const __m128i a = _mm_shuffle_epi32(w, _MM_SHUFFLE(2, 0, 2, 1));         // w1 w2 w0 w2
    const __m128i low = _mm_and_si128(_mm_srlv_epi32(a, lowShift), lowMask);
    return _mm_or_si128(low, _mm_and_si128(_mm_slli_epi64(a, 30), topMask));
  }
  SC_ROWS_TARGET Unit unpack(const uint8_t* row, int64_t s) const {
    const uint8_t* p = row + s * kUnitBytes;
    prefetchAhead(p, kUnitBytes);  // on every CPU (kPrefetchBytes: without it Q4_K 0.89-0.99x on the AMD EPYC)
    const __m128 dAndMin = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(le32(p))));
    Unit u;
    u.minsScales = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(scalesMins(p + 4))), _mm512_permutexvar_ps(halves, _mm512_castps128_ps512(dAndMin)));
    const __m512i z0 = _mm512_loadu_si512(p + kCodesAt), z1 = _mm512_loadu_si512(p + kCodesAt + 64);
    u.codes[0] = _mm512_and_si512(z0, m4);
    u.codes[1] = _mm512_and_si512(_mm512_srli_epi16(z0, 4), m4);
    u.codes[2] = _mm512_and_si512(z1, m4);
    u.codes[3] = _mm512_and_si512(_mm512_srli_epi16(z1, 4), m4);
    if constexpr (F == QFmt::Q5_K) {
      const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16)));
      for (int i = 0; i < 4; i++) u.codes[i] = _mm512_mask_add_epi8(u.codes[i], _mm512_test_epi8_mask(qh, fifth[i]), u.codes[i], sixteen);
    }
    return u;
  }
  /** acc plus super-block s of a row against x's. */
  SC_ROWS_TARGET __m512 product(__m512 acc, const Unit& u, const QuantRow1X& xr, int64_t s) const {
    const __m512 xs = _mm512_loadu_ps(xr.d.data() + 16 * s);
    acc = _mm512_mask3_fnmadd_ps(u.minsScales, xs, acc, 0x00ff);  // the mins' term in lanes 0-7
    const __m512 scales = _mm512_mul_ps(u.minsScales, xs);
    for (int i = 0; i < 4; i++) {
      const __m512i r = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u.codes[i], _mm512_loadu_si512(xr.q.data() + 256 * s + 64 * i));
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(r), _mm512_permutexvar_ps(pick[i], scales), acc);
    }
    return acc;
  }
  SC_ROWS_TARGET __m512 operator()(__m512 acc, const uint8_t* row, int64_t s) const { return product(acc, unpack(row, s), x, s); }
};

/**
 * Q6_K: w = d·sc_i·(q − 32), q = 4 low bits (ql) and 2 high bits (qh), a signed 8-bit scale per
 * 16 weights. Each half super-block's 64 ql bytes give codes 0-63 (low nibbles) and 64-127 (high
 * nibbles); its 32 qh bytes, loaded into both 256-bit halves, give their high bits by word shifts
 * (4, 2 left; 0, 2 right) and a 0x30 mask. x keeps its order; the sums start at −32·Σq_x. The 16
 * scales times x's d_x of each (prepareQ6K) once a super-block, each sum vector picks its four.
 */
struct Q6KRowStep {
  static constexpr int64_t kUnitBytes = 210, kUnitWeights = 256;
  const QuantRow1X& x;
  __m512i m4 = _mm512_set1_epi8(15), m2 = _mm512_set1_epi8(0x30);
  __m512i up = _mm512_mask_blend_epi16(0xffff0000u, _mm512_set1_epi16(4), _mm512_set1_epi16(2));
  __m512i down = _mm512_mask_blend_epi16(0xffff0000u, _mm512_setzero_si512(), _mm512_set1_epi16(2));
  __m512i pick[4];
  SC_ROWS_TARGET explicit Q6KRowStep(const QuantRow1X& x) : x(x) {
    for (int i = 0; i < 4; i++) {
      pick[i] = _mm512_add_epi32(_mm512_set1_epi32(4 * i), _mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 2));
    }
  }
  /** A super-block's codes (two vectors a half) and its 16 scales d·sc_i. */
  struct Unit {
    __m512i codes[4];
    __m512 s16;
  };
  SC_ROWS_TARGET Unit unpack(const uint8_t* row, int64_t s) const {
    const uint8_t* p = row + s * kUnitBytes;
    Unit u;
    const __m512 d = _mm512_set1_ps(_cvtsh_ss(le16(p + 208)));
    u.s16 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 192)))), d);
    for (int h = 0; h < 2; h++) {
      const __m512i ql = _mm512_loadu_si512(p + 64 * h);
      const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 128 + 32 * h)));
      u.codes[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_sllv_epi16(qh, up), m2));
      u.codes[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), _mm512_and_si512(_mm512_srlv_epi16(qh, down), m2));
    }
    return u;
  }
  /** acc plus super-block s of a row against x's. */
  SC_ROWS_TARGET __m512 product(__m512 acc, const Unit& u, const QuantRow1X& xr, int64_t s) const {
    const __m512 scales = _mm512_mul_ps(u.s16, _mm512_loadu_ps(xr.d.data() + 16 * s));
    for (int i = 0; i < 4; i++) {
      const int64_t at = 256 * s + 64 * i;
      const __m512i r = _mm512_dpbusd_epi32(_mm512_loadu_si512(xr.start.data() + at / 4), u.codes[i], _mm512_loadu_si512(xr.q.data() + at));
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(r), _mm512_permutexvar_ps(pick[i], scales), acc);
    }
    return acc;
  }
  SC_ROWS_TARGET __m512 operator()(__m512 acc, const uint8_t* row, int64_t s) const { return product(acc, unpack(row, s), x, s); }
};

/**
 * MLX's affine groups of 64 (w = s·q + b, s and b bf16, or fp16 for the _F16 formats), a group a
 * step: MLX4's 32 bytes of paired nibbles (byte j: weights 2j low, 2j + 1 high) into both halves of
 * a vector, the upper half shifted by 4, are the group's even weights then its odd ones, which x's
 * layout follows; MLX8's 64 unsigned bytes go into vpdpbusd as they lie. Each lane's sum times
 * s·d_x of its block of 32, and b·(Σ_h d_x,h·Σq_x,h) added in lane 0.
 */
template <QFmt F>
struct MlxRowStep {
  static_assert(F == QFmt::Mlx4 || F == QFmt::Mlx8 || F == QFmt::Mlx4F16 || F == QFmt::Mlx8F16, "MLX's affine groups");
  static constexpr bool kFour = F == QFmt::Mlx4 || F == QFmt::Mlx4F16;
  static constexpr int64_t kUnitBytes = qBlockBytes(F), kUnitWeights = 64;
  const QuantRow1X& x;
  __m512i m4 = _mm512_set1_epi8(15);
  __m512i highHalf = _mm512_mask_blend_epi64(0xf0, _mm512_setzero_si512(), _mm512_set1_epi16(4));  // word shifts: 0 below, 4 above
  SC_ROWS_TARGET explicit MlxRowStep(const QuantRow1X& x) : x(x) {}
  /** A group's codes and its scale and bias. */
  struct Unit {
    __m512i codes;
    float s, b;
  };
  /** quant_blocks.h mlxHalf's value, fp16 by F16C's one instruction (mlxHalf widens it in portable code). */
  SC_ROWS_TARGET static float half(uint16_t h) {
    if constexpr (F == QFmt::Mlx4F16 || F == QFmt::Mlx8F16) return _cvtsh_ss(h);
    else return bf16ToFloat(h);
  }
  SC_ROWS_TARGET Unit unpack(const uint8_t* row, int64_t g) const {
    const uint8_t* p = row + g * kUnitBytes;
    prefetchAhead(p, kUnitBytes);
    Unit u;
    if constexpr (kFour) {
      const __m512i both = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 4)));
      u.codes = _mm512_and_si512(_mm512_srlv_epi16(both, highHalf), m4);
    } else {
      u.codes = _mm512_loadu_si512(p + 4);
    }
    u.s = half(le16(p));
    u.b = half(le16(p + 2));
    return u;
  }
  /** acc plus group g of a row against x's. */
  SC_ROWS_TARGET __m512 product(__m512 acc, const Unit& u, const QuantRow1X& xr, int64_t g) const {
    const __m512i r = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u.codes, _mm512_loadu_si512(xr.q.data() + 64 * g));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(r), _mm512_mul_ps(_mm512_set1_ps(u.s), _mm512_loadu_ps(xr.d.data() + 16 * g)), acc);
    return _mm512_mask3_fmadd_ps(_mm512_set1_ps(u.b), _mm512_set1_ps(xr.msum[static_cast<size_t>(g)]), acc, 1);
  }
  SC_ROWS_TARGET __m512 operator()(__m512 acc, const uint8_t* row, int64_t g) const { return product(acc, unpack(row, g), x, g); }
};

/**
 * A step of whole units (MinsKRowStep, Q6KRowStep, MlxRowStep) for M rows of x at once (a batch's
 * decode, a short prefill): each unit of W unpacked once and multiplied with every row, one
 * accumulator a row.
 */
template <class Step, int M>
SC_ROWS_TARGET void unitRowsOfMany(const Step& step, const QuantRow1X* xs, const uint8_t* W, int64_t K, const float* bias, float* y, int64_t ldy,
                                int64_t n0, int64_t n1) {
  const int64_t units = K / Step::kUnitWeights, rowBytes = units * Step::kUnitBytes;
  for (int64_t n = n0; n < n1; n++) {
    const uint8_t* wr = W + n * rowBytes;
    __m512 acc[M];
    for (int m = 0; m < M; m++) acc[m] = _mm512_setzero_ps();
    for (int64_t s = 0; s < units; s++) {
      const typename Step::Unit u = step.unpack(wr, s);
      for (int m = 0; m < M; m++) acc[m] = step.product(acc[m], u, xs[m], s);
    }
    for (int m = 0; m < M; m++) y[m * ldy + n] = _mm512_reduce_add_ps(acc[m]) + (bias ? bias[n] : 0.0f);
  }
}

template <class Step>
SC_ROWS_TARGET void unitRowsOfMany(const QuantRow1X* xs, int M, const uint8_t* W, int64_t K, const float* bias, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  const Step step(xs[0]);
  withRowCount(M, [&](auto rows) { unitRowsOfMany<Step, decltype(rows)::value>(step, xs, W, K, bias, y, ldy, n0, n1); });
}

}  // namespace

bool quantRow1Avx512Handles(QFmt f) {
  return f == QFmt::Q8_0 || f == QFmt::Q4_0 || f == QFmt::Q4_1 || f == QFmt::Q5_0 || f == QFmt::Q5_1 || f == QFmt::Q4_K || f == QFmt::Q5_K ||
         f == QFmt::Q6_K || f == QFmt::Mlx4 || f == QFmt::Mlx8 || f == QFmt::Mlx4F16 || f == QFmt::Mlx8F16;
}

namespace {

/** Σ of 4 consecutive codes: one sum lane's share of x. */
inline int32_t sumOf4(const int8_t* q) { return q[0] + q[1] + q[2] + q[3]; }

/**
 * Q8_0, Q4_0, Q5_0: groups of four blocks, codes in the layout groupSums reads (its header). A
 * block's halves are copied whole and each lane's start taken from four codes at once (a decode step
 * lays x out for each of its ~200 products: byte by byte this was ~3 % of a Q4_0 token).
 */
void prepareGroups(QFmt f, const int8_t* xq, const float* xd, int64_t K, QuantRow1X& out) {
  const int64_t blocks = K / 32, groups = (blocks + kGroupBlocks - 1) / kGroupBlocks;
  const bool natural = f == QFmt::Q8_0;
  const int lanes = natural ? 32 : 16;
  const int32_t centre = f == QFmt::Q8_0 ? 128 : f == QFmt::Q4_0 ? 8 : f == QFmt::Q5_0 ? 16 : 0;  // Q4_1, Q5_1: codes as they are
  const bool mins = hasMin(f);
  // Only a last partial group's tail needs zeros; every other byte and lane is written below.
  out.q.resize(static_cast<size_t>(groups * kGroupWeights));
  out.start.resize(static_cast<size_t>(groups * lanes));
  out.d.resize(static_cast<size_t>(groups * 16));
  if (mins) out.msum.resize(static_cast<size_t>(groups * 16));
  const int64_t tailFrom = blocks % kGroupBlocks == 0 ? groups : groups - 1;
  if (tailFrom < groups) {
    std::memset(out.q.data() + tailFrom * kGroupWeights, 0, kGroupWeights);
    std::fill(out.start.begin() + tailFrom * lanes, out.start.end(), 0);
    std::fill(out.d.begin() + tailFrom * 16, out.d.end(), 0.0f);
    if (mins) std::fill(out.msum.begin() + tailFrom * 16, out.msum.end(), 0.0f);
  }
  for (int64_t blk = 0; blk < blocks; blk++) {
    const int64_t g = blk / kGroupBlocks;
    const int b = static_cast<int>(blk % kGroupBlocks);
    int8_t* q = out.q.data() + g * kGroupWeights;
    int32_t* start = out.start.data() + g * lanes;
    const int8_t* src = xq + 32 * blk;
    if (natural) {
      // Value j of block b at 32b + j: lane 8b + j/4.
      std::memcpy(q + 32 * b, src, 32);
      for (int i = 0; i < 8; i++) start[8 * b + i] = -centre * sumOf4(src + 4 * i);
    } else {
      // The low half (j < 16) at 16b + j, the high half at 64 + 16b + (j − 16): lane 4b + (j % 16)/4 either way.
      std::memcpy(q + 16 * b, src, 16);
      std::memcpy(q + 64 + 16 * b, src + 16, 16);
      for (int i = 0; i < 4; i++) {
        const int32_t lane = sumOf4(src + 4 * i) + sumOf4(src + 16 + 4 * i);
        start[4 * b + i] = -centre * lane;
        if (mins) out.msum[static_cast<size_t>(16 * g + 4 * b + i)] = xd[blk] * static_cast<float>(lane);  // what the block's m multiplies
      }
    }
    for (int i = 0; i < 4; i++) out.d[static_cast<size_t>(16 * g + 4 * b + i)] = xd[blk];
  }
}

/**
 * Q4_K and Q5_K: per super-block the sub-blocks in the order [0, 2, 1, 3, 4, 6, 5, 7], and 16
 * floats: each sub-block's d_x·Σq_x (what its min multiplies), then its d_x.
 */
void prepareQ4K(const int8_t* xq, const float* xd, int64_t K, QuantRow1X& out) {
  constexpr int order[8] = {0, 2, 1, 3, 4, 6, 5, 7};
  const int64_t blocks = K / 32;
  out.q.resize(static_cast<size_t>(K));
  out.d.resize(static_cast<size_t>(blocks * 2));
  for (int64_t s = 0; s < blocks / 8; s++) {
    for (int i = 0; i < 8; i++) std::memcpy(out.q.data() + 256 * s + 32 * i, xq + 32 * (8 * s + order[i]), 32);
    for (int g = 0; g < 8; g++) {
      const int64_t blk = 8 * s + g;
      int32_t sum = 0;
      for (int j = 0; j < 32; j++) sum += xq[32 * blk + j];
      out.d[static_cast<size_t>(16 * s + g)] = xd[blk] * static_cast<float>(sum);
      out.d[static_cast<size_t>(16 * s + 8 + g)] = xd[blk];
    }
  }
}

/**
 * MLX's groups of 64: x's codes a group at a time (MLX4: its even values, then its odd ones), each
 * lane's d_x (16 a group: MLX4's lanes 4j..4j+3 block j mod 2 of the group, MLX8's 8j..8j+7 block
 * j), and Σ_h d_x,h·Σq_x,h a group (what its bias multiplies).
 */
void prepareMlx(bool four, const int8_t* xq, const float* xd, int64_t K, QuantRow1X& out) {
  const int64_t groups = K / 64;
  out.q.resize(static_cast<size_t>(K));
  out.d.resize(static_cast<size_t>(groups * 16));
  out.msum.resize(static_cast<size_t>(groups));
  for (int64_t g = 0; g < groups; g++) {
    const int8_t* src = xq + 64 * g;
    int8_t* q = out.q.data() + 64 * g;
    if (four) {
      for (int j = 0; j < 32; j++) {
        q[j] = src[2 * j];
        q[32 + j] = src[2 * j + 1];
      }
    } else {
      std::memcpy(q, src, 64);
    }
    const float a = xd[2 * g], b = xd[2 * g + 1];
    for (int l = 0; l < 16; l++) out.d[static_cast<size_t>(16 * g + l)] = (four ? (l / 4) % 2 : l / 8) == 0 ? a : b;
    int32_t sa = 0, sb = 0;
    for (int j = 0; j < 32; j++) {
      sa += src[j];
      sb += src[32 + j];
    }
    out.msum[static_cast<size_t>(g)] = a * static_cast<float>(sa) + b * static_cast<float>(sb);
  }
}

/** Q6_K: x in its order, each lane's sums starting at −32·Σq_x, x's scale for each 16 weights (a scale of W's). */
void prepareQ6K(const int8_t* xq, const float* xd, int64_t K, QuantRow1X& out) {
  out.q.assign(xq, xq + K);
  out.start.resize(static_cast<size_t>(K / 4));
  out.d.resize(static_cast<size_t>(K / 16));
  for (int64_t l = 0; l < K / 4; l++) out.start[static_cast<size_t>(l)] = -32 * (xq[4 * l] + xq[4 * l + 1] + xq[4 * l + 2] + xq[4 * l + 3]);
  for (int64_t i = 0; i < K / 16; i++) out.d[static_cast<size_t>(i)] = xd[i / 2];
}

}  // namespace

void prepareRow1Avx512(QFmt f, const int8_t* xq, const float* xd, int64_t K, QuantRow1X& out) {
  if (f == QFmt::Q4_K || f == QFmt::Q5_K) prepareQ4K(xq, xd, K, out);
  else if (f == QFmt::Q6_K) prepareQ6K(xq, xd, K, out);
  else if (f == QFmt::Mlx4 || f == QFmt::Mlx4F16 || f == QFmt::Mlx8 || f == QFmt::Mlx8F16) prepareMlx(f == QFmt::Mlx4 || f == QFmt::Mlx4F16, xq, xd, K, out);
  else prepareGroups(f, xq, xd, K, out);
}

bool quantRowsAvx512Handles(QFmt f) { return quantRow1Avx512Handles(f); }

void quantRowsAvx512(QFmt f, const QuantRow1X* xs, int M, const uint8_t* W, int64_t K, const float* bias, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  if (f == QFmt::Q8_0) rowsOfMany<QFmt::Q8_0>(xs, M, W, K, bias, y, ldy, n0, n1);
  else if (f == QFmt::Q4_0) rowsOfMany<QFmt::Q4_0>(xs, M, W, K, bias, y, ldy, n0, n1);
  else if (f == QFmt::Q5_0) rowsOfMany<QFmt::Q5_0>(xs, M, W, K, bias, y, ldy, n0, n1);
  else if (f == QFmt::Q4_1) rowsOfMany<QFmt::Q4_1>(xs, M, W, K, bias, y, ldy, n0, n1);
  else if (f == QFmt::Q5_1) rowsOfMany<QFmt::Q5_1>(xs, M, W, K, bias, y, ldy, n0, n1);
  else if (f == QFmt::Q4_K) unitRowsOfMany<MinsKRowStep<QFmt::Q4_K>>(xs, M, W, K, bias, y, ldy, n0, n1);
  else if (f == QFmt::Q5_K) unitRowsOfMany<MinsKRowStep<QFmt::Q5_K>>(xs, M, W, K, bias, y, ldy, n0, n1);
  else if (f == QFmt::Q6_K) unitRowsOfMany<Q6KRowStep>(xs, M, W, K, bias, y, ldy, n0, n1);
  else if (f == QFmt::Mlx4) unitRowsOfMany<MlxRowStep<QFmt::Mlx4>>(xs, M, W, K, bias, y, ldy, n0, n1);
  else if (f == QFmt::Mlx8) unitRowsOfMany<MlxRowStep<QFmt::Mlx8>>(xs, M, W, K, bias, y, ldy, n0, n1);
  else if (f == QFmt::Mlx4F16) unitRowsOfMany<MlxRowStep<QFmt::Mlx4F16>>(xs, M, W, K, bias, y, ldy, n0, n1);
  else if (f == QFmt::Mlx8F16) unitRowsOfMany<MlxRowStep<QFmt::Mlx8F16>>(xs, M, W, K, bias, y, ldy, n0, n1);
}

void quantRow1Avx512(QFmt f, const QuantRow1X& x, const uint8_t* W, int64_t K, const float* bias, float* y, int64_t n0, int64_t n1) {
  if (f == QFmt::Q8_0) rows<QFmt::Q8_0>(x, W, K, bias, y, n0, n1);
  else if (f == QFmt::Q4_0) rows<QFmt::Q4_0>(x, W, K, bias, y, n0, n1);
  else if (f == QFmt::Q5_0) rows<QFmt::Q5_0>(x, W, K, bias, y, n0, n1);
  else if (f == QFmt::Q4_1) rows<QFmt::Q4_1>(x, W, K, bias, y, n0, n1);
  else if (f == QFmt::Q5_1) rows<QFmt::Q5_1>(x, W, K, bias, y, n0, n1);
  else if (f == QFmt::Q4_K) fourStreams<false>(MinsKRowStep<QFmt::Q4_K>(x), W, K / 256 * 144, K / 256, bias, y, n0, n1);
  else if (f == QFmt::Q5_K) fourStreams<false>(MinsKRowStep<QFmt::Q5_K>(x), W, K / 256 * 176, K / 256, bias, y, n0, n1);
  else if (f == QFmt::Q6_K) fourStreamsForVendor(Q6KRowStep(x), W, K / 256 * 210, K / 256, bias, y, n0, n1);
  else if (f == QFmt::Mlx4) fourStreams<false>(MlxRowStep<QFmt::Mlx4>(x), W, K / 64 * 36, K / 64, bias, y, n0, n1);
  else if (f == QFmt::Mlx8) fourStreams<false>(MlxRowStep<QFmt::Mlx8>(x), W, K / 64 * 68, K / 64, bias, y, n0, n1);
  else if (f == QFmt::Mlx4F16) fourStreams<false>(MlxRowStep<QFmt::Mlx4F16>(x), W, K / 64 * 36, K / 64, bias, y, n0, n1);
  else if (f == QFmt::Mlx8F16) fourStreams<false>(MlxRowStep<QFmt::Mlx8F16>(x), W, K / 64 * 68, K / 64, bias, y, n0, n1);
}

}  // namespace sc

#else
namespace sc {
bool quantRow1Avx512Handles(QFmt) { return false; }
void prepareRow1Avx512(QFmt, const int8_t*, const float*, int64_t, QuantRow1X&) {}
void quantRow1Avx512(QFmt, const QuantRow1X&, const uint8_t*, int64_t, const float*, float*, int64_t, int64_t) {}
bool quantRowsAvx512Handles(QFmt) { return false; }
void quantRowsAvx512(QFmt, const QuantRow1X*, int, const uint8_t*, int64_t, const float*, float*, int64_t, int64_t, int64_t) {}
}  // namespace sc
#endif
