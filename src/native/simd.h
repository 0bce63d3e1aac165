// Our own hot loops, compiled twice. The binary must run on any machine of its architecture (no
// -march=native), so on x86-64 SC_VECTOR_KERNEL compiles one body for AVX2+FMA (x86-64-v3) and
// once for the baseline, and each call takes the one cpuFeatures() allows: the SMOLCLUSTER_CPU cap
// reaches these loops as it reaches the hand-written kernels (a compiler's target_clones would pick
// by the CPU alone, at load). Elsewhere (arm64 has NEON as baseline) the body is compiled once.
//
//   SC_VECTOR_KERNEL(void, scaleRow, (float* o, int64_t n, float k), (o, n, k)) { ...body... }
//
// defines `void scaleRow(float* o, int64_t n, float k)`; the last list names the parameters.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(SC_NO_MULTIVERSION)
#include "cpu_features.h"

// x86-64-v3's instruction sets, not `arch=`: a target that keeps the baseline's arch may inline the
// always-inline body (GCC inlines a callee whose instruction sets are a subset of the caller's).
#define SC_AVX2_TARGET "avx2,fma,f16c,bmi,bmi2,lzcnt,movbe,popcnt"
#define SC_VECTOR_KERNEL(ret, name, params, args)                                                       \
  static inline __attribute__((always_inline)) ret name##Body params;                                  \
  __attribute__((target(SC_AVX2_TARGET))) static ret name##Avx2 params { return name##Body args; }      \
  static ret name##Baseline params { return name##Body args; }                                         \
  ret name params { return ::sc::cpuFeatures().avx2 ? name##Avx2 args : name##Baseline args; }          \
  static inline __attribute__((always_inline)) ret name##Body params
#else
#define SC_VECTOR_KERNEL(ret, name, params, args) ret name params
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SC_RESTRICT __restrict__
#else
#define SC_RESTRICT
#endif
