// Function multi-versioning for our own hot loops. The binary must run on any machine of the
// same architecture (no -march=native), so on x86-64 GCC/Clang emit an AVX2+FMA clone next to
// the baseline one and pick at load time (ifunc). Elsewhere (arm64 has NEON as baseline) plain -O3.
#pragma once

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(SC_NO_MULTIVERSION)
#define SC_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SC_MULTIVERSION
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SC_RESTRICT __restrict__
#else
#define SC_RESTRICT
#endif
