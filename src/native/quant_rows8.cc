// Q4_0x8's layout made and read back (quant_blocks.h has it; quant_rows8.h the contract).
#include "quant_rows8.h"

#include <cstring>
#include <vector>

#include "cpu_features.h"

namespace sc {

bool rows8Products() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  const CpuFeatures& f = cpuFeatures();
  return f.avx512 && f.avx512vnni;
#else
  return false;
#endif
}

namespace {

constexpr int kQ4Bytes = 18;  // a Q4_0 block: an fp16 scale, 16 bytes of nibbles

/** Q4_0 block `q` as row r's share of an interleaved block `out` (quant_blocks.h's Q4_0x8). */
inline void interleaveBlock(const uint8_t* q, int r, uint8_t* out) {
  std::memcpy(out + 2 * r, q, 2);
  std::memcpy(out + 16 + 8 * r, q + 2, 8);
  std::memcpy(out + 80 + 8 * r, q + 10, 8);
}

}  // namespace

void repackRows8(uint8_t* w, int64_t N, int64_t K) {
  const int64_t blocks = K / 32, rowBytes = blocks * kQ4Bytes, groupBytes = kRows8 * rowBytes;
  std::vector<uint8_t> rows(static_cast<size_t>(groupBytes));
  for (int64_t g = 0; g < N / kRows8; g++) {
    uint8_t* group = w + g * groupBytes;
    std::memcpy(rows.data(), group, static_cast<size_t>(groupBytes));
    for (int64_t b = 0; b < blocks; b++)
      for (int r = 0; r < kRows8; r++) interleaveBlock(rows.data() + r * rowBytes + b * kQ4Bytes, r, group + b * kRows8BlockBytes);
  }
}

void rows8Row(const uint8_t* w, int64_t K, int64_t n, uint8_t* out) {
  const int64_t blocks = K / 32, r = n % kRows8;
  const uint8_t* group = w + n / kRows8 * kRows8 * blocks * kQ4Bytes;
  for (int64_t b = 0; b < blocks; b++) {
    const uint8_t* in = group + b * kRows8BlockBytes;
    uint8_t* q = out + b * kQ4Bytes;
    std::memcpy(q, in + 2 * r, 2);
    std::memcpy(q + 2, in + 16 + 8 * r, 8);
    std::memcpy(q + 10, in + 80 + 8 * r, 8);
  }
}

}  // namespace sc
