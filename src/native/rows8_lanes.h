// What the 512-bit kernels over rows interleaved by eight share (quant_rows8_avx512.cc,
// quant_rows8_k_avx512.cc, quant_rows8_q6k_avx512.cc): x's codes broadcast to every lane pair, the
// eight rows' scales put in their lane pairs, a group's eight values out of its lane pairs, and the
// order a thread's groups are taken in. Included by those files alone (x86-64).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cpu_features.h"
#include "quant_blocks.h"
#include "row_count.h"

#define SC_ROWS8_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,f16c,fma")))

namespace sc::rows8 {

/**
 * How far ahead of a step the products ask for W's lines, on Intel only (as quant_rows_avx512.cc's
 * four streams: kPrefetchBytes there has why). One thread, an Intel Xeon (Emerald Rapids), W cycled
 * from memory (a /tmp harness): a group of Q4_0x8 at a time read Qwen2.5-0.5B's 4864 × 896 at 10.6
 * GB/s with none, 14.7 with 1 KB ahead, 18.5 with 2 KB, 18.7 with 4 KB.
 */
constexpr int kAheadBytes = 2048;

/** With Ahead, the lines of [at, at + bytes) asked for kAheadBytes ahead (a prefetch never faults, past W's end too). */
template <bool Ahead>
inline void askAhead(const uint8_t* at, int bytes) {
  if constexpr (Ahead) {
    for (int line = 0; line < bytes; line += 64) _mm_prefetch(reinterpret_cast<const char*>(at + kAheadBytes + line), _MM_HINT_T0);
  }
}

/** S streams of W side by side: stream s at group g[s] (groupBytes a group), its M accumulators zeroed. */
template <int S, int M>
SC_ROWS8_TARGET inline void startStreams(const uint8_t* W, int64_t groupBytes, const int64_t (&g)[S], const uint8_t* (&p)[S], __m512 (&acc)[S][M]) {
  for (int s = 0; s < S; s++) {
    p[s] = W + g[s] * groupBytes;
    for (int m = 0; m < M; m++) acc[s][m] = _mm512_setzero_ps();
  }
}

/** Eight bytes of x broadcast to every 64-bit lane. */
SC_ROWS8_TARGET inline __m512i broadcast8(const int8_t* x) {
  int64_t v;
  std::memcpy(&v, x, 8);
  return _mm512_set1_epi64(v);
}

/** Eight fp16 values (16 bytes: a group's eight rows' scales) as floats, value r in lanes 2r and 2r + 1. */
SC_ROWS8_TARGET inline __m512 rowPairs(const uint8_t* halves) {
  const __m256i pairIndex = _mm256_setr_epi8(0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9, 8, 9, 10, 11, 10, 11, 12, 13, 12, 13, 14, 15, 14, 15);
  return _mm512_cvtph_ps(_mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(halves))), pairIndex));
}

/** A group's eight values from its accumulator (row r's in lanes 2r and 2r + 1, added), plus its 8 biases (0 without), into y. */
SC_ROWS8_TARGET inline void storeRows(__m512 acc, const float* bias, float* y) {
  const __m512 pairSums = _mm512_add_ps(acc, _mm512_permute_ps(acc, 0xb1));
  const __m256 rows = _mm512_castps512_ps256(_mm512_maskz_compress_ps(0x5555, pairSums));
  _mm256_storeu_ps(y, _mm256_add_ps(rows, bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps()));
}

/** Each stream's M accumulators into y's rows m (ldy apart), its group's eight values with their biases (storeRows). */
template <int S, int M>
SC_ROWS8_TARGET inline void storeStreams(const __m512 (&acc)[S][M], const float* bias, float* y, int64_t ldy, const int64_t (&g)[S]) {
  for (int s = 0; s < S; s++)
    for (int m = 0; m < M; m++) storeRows(acc[s][m], bias ? bias + kRows8 * g[s] : nullptr, y + m * ldy + kRows8 * g[s]);
}

/**
 * Groups [g0, g1) of a thread's range: with one row of x (OneRow) S at a time through many(g), one
 * from each of S equal parts of the range (S streams of W side by side, eachGroups has how many);
 * the rest, and more rows of x, one at a time through one(g).
 */
template <bool OneRow, int S, class Many, class One>
inline void inParts(int64_t g0, int64_t g1, Many&& many, One&& one) {
  int64_t g = g0;
  if constexpr (OneRow) {
    const int64_t part = (g1 - g0) / S;
    for (int64_t i = 0; i < part; i++) {
      int64_t groups[S];
      for (int s = 0; s < S; s++) groups[s] = g0 + s * part + i;
      many(groups);
    }
    g = g0 + S * part;
  }
  for (; g < g1; g++) {
    const int64_t groups[1] = {g};
    one(groups);
  }
}

/**
 * A kernel's groups [g0, g1) against M rows of x (1 ≤ M ≤ 8): run(rows, ahead, groups) for each
 * call inParts makes, rows (an integral_constant) the rows of x it takes, ahead (a bool_constant)
 * whether it asks for W's lines ahead, and groups an array of S or of one. By vendor (measured on one
 * machine of each):
 *  - Intel: four streams, lines asked for kAheadBytes ahead (its prefetchers left the streams short).
 *    An Intel Xeon (Emerald Rapids), W from memory: a group at a time read SmolLM2's and
 *    Qwen2.5-0.5B's Q4_0 matrices at 0.83-0.94x the rate of quant_rows_avx512.cc's four-stream row
 *    kernel, four groups side by side at 1.11-1.17x.
 *  - else: two streams, no prefetch instructions (its prefetchers keep up). The AMD EPYC (Zen 4), a
 *    decode step of the GGUF files, one thread, generations alternated in one process (a /tmp
 *    harness, medians), two streams against four: SmolLM2-135M Q4_0 0.92-0.94x the time a token,
 *    Q4_K_M 0.94x, Q8_0 0.98-1.00x; Qwen2.5-0.5B Q4_0 0.87x, Q8_0 0.94x, Q4_K_M 0.95x; on two
 *    threads level (SmolLM2 Q4_0 0.99x). One stream was 1.04x, three 1.02x, eight 1.22x.
 */
template <class Run>
inline void eachGroups(int M, int64_t g0, int64_t g1, Run&& run) {
  withRowCount(M, [&](auto rows) {
    const auto inOrder = [&](auto ahead, auto streams) {
      inParts<decltype(rows)::value == 1, decltype(streams)::value>(
          g0, g1, [&](const auto& many) { run(std::integral_constant<int, 1>{}, ahead, many); },
          [&](const int64_t (&one)[1]) { run(rows, ahead, one); });
    };
    if (cpuIsIntel()) inOrder(std::true_type{}, std::integral_constant<int, 4>{});
    else inOrder(std::false_type{}, std::integral_constant<int, 2>{});
  });
}

}  // namespace sc::rows8
