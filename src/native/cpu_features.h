// The CPU features every kernel's dispatch reads: detected once (CPUID and XGETBV on x86-64, the
// auxiliary vector or sysctl on arm64), then capped by SMOLCLUSTER_CPU so that one machine can run
// every lower path (docs/NATIVE.md, "CPU levels"). A kernel asks `cpuFeatures().avx512bf16`, never
// the CPU itself: a capped process must not take a path its cap excludes.
#pragma once

#include <string>

namespace sc {

/** The instruction sets our kernels (and oneDNN, through its ISA cap) may use in this process. */
struct CpuFeatures {
  // x86-64; each AVX-512 and AMX entry includes the OS's permission to use its registers.
  bool avx2 = false;  // with FMA and F16C (x86-64-v3)
  bool avx512 = false;  // AVX-512 F, BW, VL and DQ (Skylake-SP and later)
  bool avx512vnni = false;  // VPDPBUSD (Cascade Lake, Ice Lake, Zen 4)
  bool avx512bf16 = false;  // VDPBF16PS, VCVTNE2PS2BF16 (Cooper Lake, Sapphire Rapids, Zen 4)
  bool amxBf16 = false;  // AMX-TILE + AMX-BF16, with Linux's per-process tile permission granted
  bool amxInt8 = false;  // AMX-TILE + AMX-INT8, likewise
  // arm64
  bool neon = false;  // Advanced SIMD (every arm64 CPU)
  bool dotprod = false;  // SDOT/UDOT (Armv8.2 DotProd: Apple M1, Graviton 2)
  bool i8mm = false;  // SMMLA/USDOT (Armv8.6: Apple M2, Graviton 3)
  bool bf16 = false;  // BFDOT/BFMMLA (Armv8.6: Apple M2, Graviton 3)
};

/** What this process may use: the hardware's features, lowered to SMOLCLUSTER_CPU's level if set. */
const CpuFeatures& cpuFeatures();

/**
 * Whether this is an Intel x86-64 CPU (CPUID's vendor "GenuineIntel"): not an instruction set, a
 * memory system. The one-row products ask for W's lines ahead on Intel only, where the hardware's
 * prefetchers left their row streams short of the core's read bandwidth (quant_rows_avx512.cc,
 * gemm_thin.cc); SMOLCLUSTER_CPU does not change it.
 */
bool cpuIsIntel();

/** What the hardware and OS offer, before any cap. */
const CpuFeatures& cpuFeaturesDetected();

/** The highest level `features` reaches on this architecture ("generic", "avx2", ... "amx", "neon" ...). */
std::string cpuLevelOf(const CpuFeatures& features);

/** The levels of this architecture, lowest first, separated by ", ". */
std::string cpuLevelNames();

/**
 * Why SMOLCLUSTER_CPU cannot be honoured ("" when it can): a value that names no level of this
 * architecture. Module init refuses to load with this message rather than run at a level nobody
 * asked for.
 */
const std::string& cpuCapError();

}  // namespace sc
