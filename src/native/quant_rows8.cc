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

namespace {

/** Row r's block q (B bytes of its row format) into a group's interleaved block (kRows8·B bytes). */
void putOf32(QFmt f, const uint8_t* q, uint8_t* out, int r) {
  const int P = qRows8Prefix(f), chunks = qRows8Chunks(f), codesAt = qRows8CodesAt(f);
  std::memcpy(out + 2 * r, q, 2);
  for (int i = 0; i < P; i++) out[qRows8PrefixAt(i, r)] = q[2 + i];
  for (int c = 0; c < chunks; c++) std::memcpy(out + codesAt + 64 * c + 8 * r, q + 2 + P + 8 * c, 8);
}

void getOf32(QFmt f, const uint8_t* in, int r, uint8_t* q) {
  const int P = qRows8Prefix(f), chunks = qRows8Chunks(f), codesAt = qRows8CodesAt(f);
  std::memcpy(q, in + 2 * r, 2);
  for (int i = 0; i < P; i++) q[2 + i] = in[qRows8PrefixAt(i, r)];
  for (int c = 0; c < chunks; c++) std::memcpy(q + 2 + P + 8 * c, in + codesAt + 64 * c + 8 * r, 8);
}

/** quant_blocks.h kScalesMins' inverse: every 12 bytes unpack and pack back to themselves. */
void packScalesMins(const uint8_t* sc, const uint8_t* m, uint8_t* q) {
  for (int j = 0; j < 4; j++) {
    q[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    q[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    q[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

/** Where row r's scale and min of group j lie among a Q4_Kx8 super-block's 64 (quant_blocks.h): byte 32 + this of the low bits. */
constexpr int q4kScaleAt(int j, int r) { return 16 * (j >> 1) + 2 * r + (j & 1); }

void putQ4K(const uint8_t* q, uint8_t* out, int r) {
  std::memcpy(out + 2 * r, q, 2);
  std::memcpy(out + 16 + 2 * r, q + 2, 2);
  uint8_t sc[8], m[8];
  kScalesMins(q + 4, sc, m);
  for (int j = 0; j < 8; j++) out[32 + q4kScaleAt(j, r)] = static_cast<uint8_t>((sc[j] & 15) | ((m[j] & 15) << 4));
  // (Group j + 4's index is group j's + 32.)
  for (int j = 0; j < 4; j++)
    out[96 + q4kScaleAt(j, r)] = static_cast<uint8_t>((sc[j] >> 4) | ((sc[j + 4] >> 4) << 2) | ((m[j] >> 4) << 4) | ((m[j + 4] >> 4) << 6));
  for (int c = 0; c < 4; c++)
    for (int k = 0; k < 4; k++)
      for (int i = 0; i < 4; i++) {
        const uint8_t first = q[16 + 32 * c + 8 * k + i], second = q[16 + 32 * c + 8 * k + 4 + i];
        uint8_t* at = out + 128 + 256 * c + 64 * k + 8 * r + i;
        at[0] = static_cast<uint8_t>((first & 15) | ((second & 15) << 4));
        at[4] = static_cast<uint8_t>((first >> 4) | (second & 0xf0));
      }
}

void getQ4K(const uint8_t* in, int r, uint8_t* q) {
  std::memcpy(q, in + 2 * r, 2);
  std::memcpy(q + 2, in + 16 + 2 * r, 2);
  uint8_t sc[8], m[8];
  for (int j = 0; j < 8; j++) {
    const int i = q4kScaleAt(j, r), low = in[32 + i], top = in[96 + i % 32] >> (i < 32 ? 0 : 2);
    sc[j] = static_cast<uint8_t>((low & 15) | ((top & 3) << 4));
    m[j] = static_cast<uint8_t>((low >> 4) | (((top >> 4) & 3) << 4));
  }
  packScalesMins(sc, m, q + 4);
  for (int c = 0; c < 4; c++)
    for (int k = 0; k < 4; k++)
      for (int i = 0; i < 4; i++) {
        const uint8_t* at = in + 128 + 256 * c + 64 * k + 8 * r + i;
        q[16 + 32 * c + 8 * k + i] = static_cast<uint8_t>((at[0] & 15) | ((at[4] & 15) << 4));
        q[16 + 32 * c + 8 * k + 4 + i] = static_cast<uint8_t>((at[0] >> 4) | (at[4] & 0xf0));
      }
}

}  // namespace

void repackRows8(QFmt f, uint8_t* w, int64_t N, int64_t K) {
  const QFmt to = qRows8Format(f);
  const int B = qBlockBytes(f);
  const int64_t blocks = K / qBlockWeights(f), rowBytes = blocks * B, groupBytes = kRows8 * rowBytes;
  std::vector<uint8_t> rows(static_cast<size_t>(groupBytes));
  for (int64_t g = 0; g < N / kRows8; g++) {
    uint8_t* group = w + g * groupBytes;
    std::memcpy(rows.data(), group, static_cast<size_t>(groupBytes));
    for (int64_t b = 0; b < blocks; b++) {
      uint8_t* out = group + b * kRows8 * B;
      for (int r = 0; r < kRows8; r++) {
        const uint8_t* q = rows.data() + r * rowBytes + b * B;
        if (to == QFmt::Q4_Kx8) putQ4K(q, out, r);
        else putOf32(to, q, out, r);
      }
    }
  }
}

void rows8Block(QFmt f, const uint8_t* w, int64_t K, int64_t n, int64_t b, uint8_t* out) {
  const int B = qBlockBytes(f);
  const int64_t blocks = K / qBlockWeights(f);
  const uint8_t* in = w + (n / kRows8 * blocks + b) * kRows8 * B;
  if (f == QFmt::Q4_Kx8) getQ4K(in, static_cast<int>(n % kRows8), out);
  else getOf32(f, in, static_cast<int>(n % kRows8), out);
}

void rows8Row(QFmt f, const uint8_t* w, int64_t K, int64_t n, uint8_t* out) {
  const int64_t blocks = K / qBlockWeights(f);
  for (int64_t b = 0; b < blocks; b++) rows8Block(f, w, K, n, b, out + b * qBlockBytes(f));
}

}  // namespace sc
