// CPU feature detection, once a process, and the SMOLCLUSTER_CPU cap (cpu_features.h).
#include "cpu_features.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "napi_args.h"
#include "registry.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace sc {
namespace {

/** A level: its name and the features it allows (a cap keeps a feature where both have it). */
struct Level {
  const char* name;
  CpuFeatures allows;
};

CpuFeatures allowing(bool avx2, bool avx512, bool vnni, bool bf16, bool amx) {
  CpuFeatures f;
  f.avx2 = avx2;
  f.avx512 = avx512;
  f.avx512vnni = vnni;
  f.avx512bf16 = bf16;
  f.amxBf16 = f.amxInt8 = amx;
  return f;
}

CpuFeatures allowingArm(bool neon, bool dotprod, bool v86) {
  CpuFeatures f;
  f.neon = neon;
  f.dotprod = dotprod;
  f.i8mm = f.bf16 = v86;
  return f;
}

#if defined(__aarch64__)
const Level kLevels[] = {
    {"generic", allowingArm(false, false, false)},
    {"neon", allowingArm(true, false, false)},
    {"neon-dotprod", allowingArm(true, true, false)},
    {"neon-bf16", allowingArm(true, true, true)},  // Armv8.6: I8MM and BF16 together
};
#else
const Level kLevels[] = {
    {"generic", allowing(false, false, false, false, false)},
    {"avx2", allowing(true, false, false, false, false)},
    {"avx512", allowing(true, true, false, false, false)},
    {"avx512-vnni", allowing(true, true, true, false, false)},
    {"avx512-bf16", allowing(true, true, true, true, false)},
    {"amx", allowing(true, true, true, true, true)},
};
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
bool bit(unsigned word, int b) { return (word >> b) & 1u; }

/** XCR0: which register states the OS saves (AVX needs YMM, AVX-512 the opmask and ZMM states). */
uint64_t osSavedStates(unsigned leaf1Ecx) {
  if (!bit(leaf1Ecx, 27)) return 0;  // no OSXSAVE: XGETBV would fault
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

/** Linux hands AMX tile data to a process only once it asks (arch_prctl ARCH_REQ_XCOMP_PERM). */
bool amxPermitted() {
#if defined(__linux__)
  constexpr int kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a = 0, b = 0, c1 = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c1, &d)) return f;
  const uint64_t xcr0 = osSavedStates(c1);
  const bool ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;
  unsigned b7 = 0, c7 = 0, d7 = 0, a71 = 0, unused = 0;
  if (!__get_cpuid_count(7, 0, &a, &b7, &c7, &d7)) return f;
  __get_cpuid_count(7, 1, &a71, &unused, &unused, &unused);
  // leaf 1 ECX: FMA 12, F16C 29; leaf 7 EBX: AVX2 5, AVX512F 16, DQ 17, BW 30, VL 31.
  f.avx2 = ymm && bit(b7, 5) && bit(c1, 12) && bit(c1, 29);
  f.avx512 = f.avx2 && zmm && bit(b7, 16) && bit(b7, 17) && bit(b7, 30) && bit(b7, 31);
  f.avx512vnni = f.avx512 && bit(c7, 11);  // leaf 7 ECX 11
  f.avx512bf16 = f.avx512 && bit(a71, 5);  // leaf 7.1 EAX 5
  // leaf 7 EDX: AMX-BF16 22, AMX-TILE 24, AMX-INT8 25; XCR0 17-18: XTILECFG, XTILEDATA.
  const bool tiles = f.avx512 && bit(d7, 24) && (xcr0 & 0x60000) == 0x60000 && amxPermitted();
  f.amxBf16 = tiles && bit(d7, 22);
  f.amxInt8 = tiles && bit(d7, 25);
  return f;
}

bool detectIntel() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
  char vendor[13] = {};
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  return std::strcmp(vendor, "GenuineIntel") == 0;
}
#elif defined(__aarch64__) && defined(__linux__)
CpuFeatures detect() {
  // HWCAP_ASIMD 1, HWCAP_ASIMDDP 20; HWCAP2_I8MM 13, HWCAP2_BF16 14 (asm/hwcap.h).
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  CpuFeatures f;
  f.neon = (hw >> 1) & 1;
  f.dotprod = f.neon && ((hw >> 20) & 1);
  f.i8mm = f.neon && ((hw2 >> 13) & 1);
  f.bf16 = f.neon && ((hw2 >> 14) & 1);
  return f;
}
#elif defined(__aarch64__) && defined(__APPLE__)
bool sysctlFlag(const char* name) {
  int v = 0;
  size_t n = sizeof v;
  return sysctlbyname(name, &v, &n, nullptr, 0) == 0 && v != 0;
}

CpuFeatures detect() {
  CpuFeatures f;
  f.neon = true;
  f.dotprod = sysctlFlag("hw.optional.arm.FEAT_DotProd");
  f.i8mm = sysctlFlag("hw.optional.arm.FEAT_I8MM");
  f.bf16 = sysctlFlag("hw.optional.arm.FEAT_BF16");
  return f;
}
#else
CpuFeatures detect() { return CpuFeatures{}; }
#endif

CpuFeatures both(const CpuFeatures& x, const CpuFeatures& y) {
  CpuFeatures f;
  f.avx2 = x.avx2 && y.avx2;
  f.avx512 = x.avx512 && y.avx512;
  f.avx512vnni = x.avx512vnni && y.avx512vnni;
  f.avx512bf16 = x.avx512bf16 && y.avx512bf16;
  f.amxBf16 = x.amxBf16 && y.amxBf16;
  f.amxInt8 = x.amxInt8 && y.amxInt8;
  f.neon = x.neon && y.neon;
  f.dotprod = x.dotprod && y.dotprod;
  f.i8mm = x.i8mm && y.i8mm;
  f.bf16 = x.bf16 && y.bf16;
  return f;
}

/** Whether `f` has everything level `l` allows. */
bool reaches(const CpuFeatures& f, const Level& l) {
  const CpuFeatures common = both(f, l.allows);
  return std::memcmp(&common, &l.allows, sizeof common) == 0;
}

struct Table {
  CpuFeatures detected, capped;
  std::string error;
};

const Table& table() {
  static const Table t = [] {
    Table r;
    r.detected = r.capped = detect();
    const char* cap = std::getenv("SMOLCLUSTER_CPU");
    if (cap == nullptr || *cap == '\0' || std::strcmp(cap, "native") == 0) return r;
    for (const Level& l : kLevels) {
      if (std::strcmp(cap, l.name) == 0) {
        r.capped = both(r.detected, l.allows);
        return r;
      }
    }
    r.error = std::string("SMOLCLUSTER_CPU=") + cap + " names no CPU level of this architecture; use native or one of: " +
              cpuLevelNames();
    return r;
  }();
  return t;
}

void setFlag(napi_env env, napi_value obj, const char* name, bool v) {
  napi_set_named_property(env, obj, name, boolValue(env, v));
}

napi_value featuresObject(napi_env env, const CpuFeatures& f) {
  napi_value o;
  napi_create_object(env, &o);
#if defined(__aarch64__)
  setFlag(env, o, "neon", f.neon);
  setFlag(env, o, "dotprod", f.dotprod);
  setFlag(env, o, "i8mm", f.i8mm);
  setFlag(env, o, "bf16", f.bf16);
#else
  setFlag(env, o, "avx2", f.avx2);
  setFlag(env, o, "avx512", f.avx512);
  setFlag(env, o, "avx512vnni", f.avx512vnni);
  setFlag(env, o, "avx512bf16", f.avx512bf16);
  setFlag(env, o, "amxBf16", f.amxBf16);
  setFlag(env, o, "amxInt8", f.amxInt8);
#endif
  return o;
}

}  // namespace

const CpuFeatures& cpuFeatures() { return table().capped; }
const CpuFeatures& cpuFeaturesDetected() { return table().detected; }
const std::string& cpuCapError() { return table().error; }

bool cpuIsIntel() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool intel = detectIntel();
  return intel;
#else
  return false;
#endif
}

std::string cpuLevelOf(const CpuFeatures& f) {
  const char* best = kLevels[0].name;
  for (const Level& l : kLevels)
    if (reaches(f, l)) best = l.name;
  return best;
}

std::string cpuLevelNames() {
  std::string s;
  for (const Level& l : kLevels) s += (s.empty() ? "" : ", ") + std::string(l.name);
  return s;
}

/** exports.cpu = { arch, level, detectedLevel, levels, features, detected }: the table, for `smolcluster info` and tests. */
void registerCpuFeatures(napi_env env, napi_value exports) {
  napi_value cpu, levels;
  napi_create_object(env, &cpu);
#if defined(__aarch64__)
  napi_set_named_property(env, cpu, "arch", stringValue(env, "arm64"));
#else
  napi_set_named_property(env, cpu, "arch", stringValue(env, "x64"));
#endif
  napi_set_named_property(env, cpu, "level", stringValue(env, cpuLevelOf(cpuFeatures())));
  napi_set_named_property(env, cpu, "detectedLevel", stringValue(env, cpuLevelOf(cpuFeaturesDetected())));
  napi_create_array(env, &levels);
  uint32_t i = 0;
  for (const Level& l : kLevels) napi_set_element(env, levels, i++, stringValue(env, l.name));
  napi_set_named_property(env, cpu, "levels", levels);
  napi_set_named_property(env, cpu, "features", featuresObject(env, cpuFeatures()));
  napi_set_named_property(env, cpu, "detected", featuresObject(env, cpuFeaturesDetected()));
  napi_set_named_property(env, exports, "cpu", cpu);
}

}  // namespace sc
