// The interleaved layouts made and read back (quant_blocks.h has them; quant_rows8.h the contract).
#include "quant_rows8.h"

#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

/** Where row r's scale and min of group j lie among a Q4_Kx8 super-block's 64 (quant_blocks.h): byte 32 + this of the low bits. */
constexpr int q4kScaleAt(int j, int r) { return 16 * (j >> 1) + 2 * r + (j & 1); }

/** Row r's six-bit scale and min of group j from a Q4_Kx8 super-block's low and top bits. */
void q4kScaleMin(const uint8_t* in, int j, int r, uint8_t& sc, uint8_t& m) {
  const int i = q4kScaleAt(j, r), low = in[32 + i], top = in[96 + i % 32] >> (i < 32 ? 0 : 2);
  sc = static_cast<uint8_t>((low & 15) | ((top & 3) << 4));
  m = static_cast<uint8_t>((low >> 4) | (((top >> 4) & 3) << 4));
}

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
  for (int j = 0; j < 8; j++) q4kScaleMin(in, j, r, sc[j], m[j]);
  packScalesMins(sc, m, q + 4);
  for (int c = 0; c < 4; c++)
    for (int k = 0; k < 4; k++)
      for (int i = 0; i < 4; i++) {
        const uint8_t* at = in + 128 + 256 * c + 64 * k + 8 * r + i;
        q[16 + 32 * c + 8 * k + i] = static_cast<uint8_t>((at[0] & 15) | ((at[4] & 15) << 4));
        q[16 + 32 * c + 8 * k + 4 + i] = static_cast<uint8_t>((at[0] >> 4) | (at[4] & 0xf0));
      }
}

/** Where row r's scale of group g (16 weights) lies in a Q6_Kx8 super-block (quant_blocks.h). */
constexpr int q6kScaleAt(int g, int r) { return 16 + 16 * (g >> 1) + 2 * r + (g & 1); }
/** Where row r's byte s of half t of block c lies in the first of its three vectors in a Q6_Kx8 super-block (the others 64 and 128 past it). */
constexpr int q6kCodeAt(int c, int t, int s, int r) { return 144 + 192 * c + 8 * r + 4 * t + s; }

/** The four codes (0..63) one byte position of a Q6_Kx8 block holds, k[4v] for v = 0..3, from its three vectors' bytes at. */
void q6kx8Codes(const uint8_t* at, uint8_t* k) {
  for (int v = 0; v < 3; v++) k[4 * v] = at[64 * v] & 63;
  k[12] = static_cast<uint8_t>((at[0] >> 6) | ((at[64] >> 6) << 2) | ((at[128] >> 6) << 4));
}

void putQ6K(const uint8_t* q, uint8_t* out, int r) {
  std::memcpy(out + 2 * r, q + 208, 2);
  for (int g = 0; g < 16; g++) out[q6kScaleAt(g, r)] = q[192 + g];
  // Q6_K's codes in weight order, less their centre (unpackBlock's step).
  int8_t centred[256];
  for (int h = 0; h < 2; h++) ScalarUnpack::q6Codes128(q + 64 * h, q + 128 + 32 * h, centred + 128 * h);
  for (int c = 0; c < 8; c++)
    for (int t = 0; t < 2; t++)
      for (int s = 0; s < 4; s++) {
        const int8_t* k = centred + 32 * c + 16 * t + s;  // k[4v]: code vector v's
        const int top = k[12] + 32;
        uint8_t* at = out + q6kCodeAt(c, t, s, r);
        for (int v = 0; v < 3; v++) at[64 * v] = static_cast<uint8_t>((k[4 * v] + 32) | (((top >> (2 * v)) & 3) << 6));
      }
}

void getQ6K(const uint8_t* in, int r, uint8_t* q) {
  std::memcpy(q + 208, in + 2 * r, 2);
  for (int g = 0; g < 16; g++) q[192 + g] = in[q6kScaleAt(g, r)];
  uint8_t codes[256];
  for (int c = 0; c < 8; c++)
    for (int t = 0; t < 2; t++)
      for (int s = 0; s < 4; s++) q6kx8Codes(in + q6kCodeAt(c, t, s, r), codes + 32 * c + 16 * t + s);
  packQ6KCodes(codes, q);
}

/** Block b of row n of an interleaved matrix of K weights a row, as the row format's block (qBlockBytes(f) bytes), into out. */
void rows8Block(QFmt f, const uint8_t* w, int64_t K, int64_t n, int64_t b, uint8_t* out) {
  const int B = qBlockBytes(f);
  const int64_t blocks = K / qBlockWeights(f);
  const uint8_t* in = w + (n / kRows8 * blocks + b) * kRows8 * B;
  const int r = static_cast<int>(n % kRows8);
  if (f == QFmt::Q4_Kx8) getQ4K(in, r, out);
  else if (f == QFmt::Q6_Kx8) getQ6K(in, r, out);
  else getOf32(f, in, r, out);
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
        else if (to == QFmt::Q6_Kx8) putQ6K(q, out, r);
        else putOf32(to, q, out, r);
      }
    }
  }
}

void rows8KUnpack(const uint8_t* w, int64_t K, int64_t n, int64_t u, int8_t* c, float* a, float* off) {
  const int r = static_cast<int>(n % kRows8);
  const uint8_t* in = w + (n / kRows8 * (K / 256) + u) * kRows8 * qBlockBytes(QFmt::Q4_Kx8);
  // Vector k of pair p: the first four bytes group 2p's codes 8k..8k+3 (low) and 8k+4..8k+7 (high), the next four group 2p + 1's.
  for (int p = 0; p < 4; p++)
    for (int k = 0; k < 4; k++) {
      const uint8_t* at = in + 128 + 256 * p + 64 * k + 8 * r;
      int8_t* first = c + 64 * p + 8 * k;
#if defined(__SSE2__)
      // (SSE2, every x86-64's: the tiles' build runs this for each row's super-block.)
      const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(at)), low4 = _mm_set1_epi8(15);
      const __m128i codes = _mm_unpacklo_epi32(_mm_and_si128(bytes, low4), _mm_and_si128(_mm_srli_epi16(bytes, 4), low4));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(first), codes);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(first + 32), _mm_unpackhi_epi64(codes, codes));
#else
      for (int h = 0; h < 2; h++)
        for (int i = 0; i < 4; i++) {
          first[32 * h + i] = static_cast<int8_t>(at[4 * h + i] & 15);
          first[32 * h + 4 + i] = static_cast<int8_t>(at[4 * h + i] >> 4);
        }
#endif
    }
  // As unpackBlock's Q4_K: a = d·sc, off = −(dmin·m) for each 16 of group j's 32.
  const float d = halfToFloat(le16(in + 2 * r)), dmin = halfToFloat(le16(in + 16 + 2 * r));
  for (int j = 0; j < 8; j++) {
    uint8_t sc, m;
    q4kScaleMin(in, j, r, sc, m);
    a[2 * j] = a[2 * j + 1] = d * static_cast<float>(sc);
    off[2 * j] = off[2 * j + 1] = -(dmin * static_cast<float>(m));
  }
}

void rows8Q6KUnpack(const uint8_t* w, int64_t K, int64_t n, int64_t u, int8_t* c, float* a) {
  const int r = static_cast<int>(n % kRows8);
  const uint8_t* in = w + (n / kRows8 * (K / 256) + u) * kRows8 * qBlockBytes(QFmt::Q6_Kx8);
  for (int b = 0; b < 8; b++) {
    const uint8_t* at = in + q6kCodeAt(b, 0, 0, r);
    int8_t* block = c + 32 * b;
#if defined(__SSE2__)
    // Each vector's 8 bytes: codes k = 0, 1, 2 of the row's two halves (4 each) in their low six bits, k = 3's in their top two.
    const __m128i v0 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(at)), v1 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(at + 64));
    const __m128i v2 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(at + 128)), low6 = _mm_set1_epi8(0x3f);
    const __m128i k3 = _mm_or_si128(_mm_or_si128(_mm_and_si128(_mm_srli_epi16(v0, 6), _mm_set1_epi8(0x03)), _mm_and_si128(_mm_srli_epi16(v1, 4), _mm_set1_epi8(0x0c))),
                                    _mm_and_si128(_mm_srli_epi16(v2, 2), _mm_set1_epi8(0x30)));
    const __m128i k01 = _mm_unpacklo_epi32(_mm_and_si128(v0, low6), _mm_and_si128(v1, low6)), k23 = _mm_unpacklo_epi32(_mm_and_si128(v2, low6), k3);
    const __m128i centre = _mm_set1_epi8(32);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(block), _mm_sub_epi8(_mm_unpacklo_epi64(k01, k23), centre));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(block + 16), _mm_sub_epi8(_mm_unpackhi_epi64(k01, k23), centre));
#else
    uint8_t codes[32];
    for (int t = 0; t < 2; t++)
      for (int s = 0; s < 4; s++) q6kx8Codes(at + 4 * t + s, codes + 16 * t + s);
    for (int i = 0; i < 32; i++) block[i] = static_cast<int8_t>(codes[i] - 32);
#endif
  }
  // As unpackBlock's Q6_K: a = d·sc for each 16.
  const float d = halfToFloat(le16(in + 2 * r));
  for (int g = 0; g < 16; g++) a[g] = d * static_cast<float>(static_cast<int8_t>(in[q6kScaleAt(g, r)]));
}

void rows8Row(QFmt f, const uint8_t* w, int64_t K, int64_t n, uint8_t* out) {
  const int64_t blocks = K / qBlockWeights(f);
  for (int64_t b = 0; b < blocks; b++) rows8Block(f, w, K, n, b, out + b * qBlockBytes(f));
}

}  // namespace sc
