#!/usr/bin/env bash
# The kernel, op and model tests again at lower CPU levels (docs/NATIVE.md, "CPU levels"): each
# level caps the native addon's feature table (SMOLCLUSTER_CPU), so this one machine runs the paths
# an AVX2 laptop or a CPU without SIMD extensions would. Run after `npm test` has built dist/.
#
#   bash scripts/cpu-levels.sh [LEVEL ...]       default: avx2 generic
#
# A level above this CPU's own runs at the CPU's own (the cap only lowers), so the list is safe on
# any x86-64 machine; on arm64 name its levels (neon, generic).
set -euo pipefail
cd "$(dirname "$0")/.."
levels=("$@")
[ ${#levels[@]} -gt 0 ] || levels=(avx2 generic)
# tensor/: every kernel and op against js and float64 references; nn/: layers, LoRA and the model
# families' parity; generate/: decode kernels (thin products, decode attention) end to end.
suites=(tensor/ nn/ generate/)
for level in "${levels[@]}"; do
  start=$(date +%s)
  echo "cpu-levels: SMOLCLUSTER_CPU=$level node scripts/run-tests.mjs ${suites[*]}"
  SMOLCLUSTER_CPU="$level" node scripts/run-tests.mjs "${suites[@]}" > ".cpu-level-$level.log" 2>&1 || {
    grep -E '^✖|^  ✖|AssertionError|test at ' ".cpu-level-$level.log" | head -60
    echo "cpu-levels: FAILED at SMOLCLUSTER_CPU=$level (whole output: .cpu-level-$level.log)"
    exit 1
  }
  grep -E '^ℹ (tests|pass|fail|skipped)' ".cpu-level-$level.log" | tr '\n' ' '
  echo "— SMOLCLUSTER_CPU=$level passed in $(( $(date +%s) - start )) s"
done
