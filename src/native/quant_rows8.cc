// The interleaved layouts made and read back (quant_blocks.h has them; quant_rows8.h the contract).
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

void repackRows8(QFmt f, uint8_t* w, int64_t N, int64_t K) {
  const int B = qBlockBytes(f), P = qRows8Prefix(f), chunks = qRows8Chunks(f), codesAt = qRows8CodesAt(f);
  const int64_t blocks = K / 32, rowBytes = blocks * B, groupBytes = kRows8 * rowBytes;
  std::vector<uint8_t> rows(static_cast<size_t>(groupBytes));
  for (int64_t g = 0; g < N / kRows8; g++) {
    uint8_t* group = w + g * groupBytes;
    std::memcpy(rows.data(), group, static_cast<size_t>(groupBytes));
    for (int64_t b = 0; b < blocks; b++) {
      uint8_t* out = group + b * kRows8 * B;
      for (int r = 0; r < kRows8; r++) {
        const uint8_t* q = rows.data() + r * rowBytes + b * B;
        std::memcpy(out + 2 * r, q, 2);
        for (int i = 0; i < P; i++) out[qRows8PrefixAt(i, r)] = q[2 + i];
        for (int c = 0; c < chunks; c++) std::memcpy(out + codesAt + 64 * c + 8 * r, q + 2 + P + 8 * c, 8);
      }
    }
  }
}

void rows8Row(QFmt f, const uint8_t* w, int64_t K, int64_t n, uint8_t* out) {
  const int B = qBlockBytes(f), P = qRows8Prefix(f), chunks = qRows8Chunks(f), codesAt = qRows8CodesAt(f);
  const int64_t blocks = K / 32, r = n % kRows8;
  const uint8_t* group = w + n / kRows8 * kRows8 * blocks * B;
  for (int64_t b = 0; b < blocks; b++) {
    const uint8_t* in = group + b * kRows8 * B;
    uint8_t* q = out + b * B;
    std::memcpy(q, in + 2 * r, 2);
    for (int i = 0; i < P; i++) q[2 + i] = in[qRows8PrefixAt(i, static_cast<int>(r))];
    for (int c = 0; c < chunks; c++) std::memcpy(q + 2 + P + 8 * c, in + codesAt + 64 * c + 8 * r, 8);
  }
}

}  // namespace sc
