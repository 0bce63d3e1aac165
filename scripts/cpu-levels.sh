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
# families' parity; generate/: decode kernels (thin products, decode attention, the quantized
# products) end to end. Left out, as the cap changes none of what they test: the WebGPU files and
# backend, and the js reference's own specs (SMOLCLUSTER_TEST_BACKENDS=native: the GPU's kernels
# are not the addon's, and the reference is plain JavaScript that never reads the cap; it stays
# loaded as the reference), the GGUF file-format tests (gguf_llama, gguf_generator: names,
# layouts, tokenizers, llama.cpp's side; the quantized kernels they run are tested per level by
# quant_native and gguf_faithful), and the files that run no kernel at all (NO_KERNEL: chat
# templates, text streams, sampling from given logits, JSON constraints, memory estimates, configs,
# tokenizer rules, row orders, shapes, the addon's loading and stamp).
# The Python references (torch, transformers, gguf-py) do not depend on the cap either: the first
# level computes them, the next ones reuse them (SMOLCLUSTER_REFERENCE_CACHE,
# test/helpers/python_reference.ts: keyed by the script and the contents of its inputs). A folder
# the caller names is used and kept (.ci/run's, for npm test after it); else a temporary one.
NO_KERNEL=" generate/chat_template generate/conversation generate/json_constraint generate/text_stream generate/inference_memory generate/sampling nn/interchange/gguf_pre_tokenizers nn/interchange/gguf_rope_rows nn/interchange/hf_config nn/interchange/hf_config_mixtral tensor/shape tensor/device_summary tensor/backends/native_loader tensor/backends/native_stamp "
suites=()
for f in dist/test/tensor dist/test/nn dist/test/generate; do
  while IFS= read -r file; do
    name=${file#dist/test/}
    case "$NO_KERNEL" in *" ${name%.test.js} "*) continue ;; esac
    case "$(basename "$file")" in *webgpu*|gguf_llama.test.js|gguf_generator.test.js) ;; *) suites+=("$name") ;; esac
  done < <(find "$f" -name '*.test.js' | sort)
done
if [ -n "${SMOLCLUSTER_REFERENCE_CACHE:-}" ]; then
  references=$SMOLCLUSTER_REFERENCE_CACHE
else
  references=$(mktemp -d "${TMPDIR:-/tmp}/smolcluster-references-XXXXXX")
  trap 'rm -rf "$references"' EXIT
fi
for level in "${levels[@]}"; do
  start=$(date +%s)
  echo "cpu-levels: SMOLCLUSTER_CPU=$level node scripts/run-tests.mjs (${#suites[@]} files of tensor/, nn/, generate/)"
  SMOLCLUSTER_CPU="$level" SMOLCLUSTER_TEST_BACKENDS=native SMOLCLUSTER_REFERENCE_CACHE="$references" node scripts/run-tests.mjs "${suites[@]}" > ".cpu-level-$level.log" 2>&1 || {
    grep -E '^✖|^  ✖|AssertionError|test at ' ".cpu-level-$level.log" | head -60
    echo "cpu-levels: FAILED at SMOLCLUSTER_CPU=$level (whole output: .cpu-level-$level.log)"
    exit 1
  }
  grep -E '^ℹ (tests|pass|fail|skipped)' ".cpu-level-$level.log" | tr '\n' ' '
  echo "— SMOLCLUSTER_CPU=$level passed in $(( $(date +%s) - start )) s"
done
