#!/usr/bin/env bash
# scripts/gpu-bench.sh [bench:gpu-models flags]: issue 21 §5 on a machine with a GPU, in one command.
# Checks what the measurement needs, says what is missing, then runs bench/gpu_models.ts (fp32 peak
# probe, GEMM 1024³/4096³, five training workloads, each beside PyTorch on the same GPU) and keeps
# its output in .bench/gpu-<UTC time>.txt. Needs, on Linux with an NVIDIA GPU:
#   - the NVIDIA driver's Vulkan ICD (/usr/share/vulkan/icd.d/nvidia_icd.json or /etc/vulkan/icd.d/)
#     and the Vulkan loader (libvulkan1); in a container, NVIDIA_DRIVER_CAPABILITIES must include
#     `graphics` (or be `all`), else the ICD is not mounted and Dawn finds no adapter;
#   - the `webgpu` npm package (an optional dependency: `npm install` fetches Dawn prebuilt);
#   - for the PyTorch side, a Python whose torch sees the GPU (CUDA; MPS on Apple silicon), named by
#     SMOLCLUSTER_PYTHON if it is not /usr/bin/python3 or python3 on PATH. Without one every PyTorch
#     cell says "no torch GPU" and no ratio is given; a cpu figure is never used in its place.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${VK_ICD_FILENAMES:-}" ] && grep -qi swiftshader "$VK_ICD_FILENAMES" 2>/dev/null; then
  echo "gpu-bench: VK_ICD_FILENAMES=$VK_ICD_FILENAMES is SwiftShader (software): unset it to reach the GPU's driver" >&2
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv || echo "gpu-bench: no nvidia-smi (not an NVIDIA machine, or no driver)"
node -e "import('webgpu').then(() => {}, (e) => { console.error('gpu-bench: the webgpu package does not load: ' + e.message + ' (run npm install)'); process.exit(1); })"
[ -f dist/bench/gpu_models.js ] || npx tsc -p tsconfig.json
node dist/src/cli/main.js info | grep -i webgpu || true
py="${SMOLCLUSTER_PYTHON:-python3}"
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'mps', getattr(torch.backends, 'mps', None) is not None and torch.backends.mps.is_available())" || echo "gpu-bench: $py has no torch: the PyTorch side will be empty"
mkdir -p .bench && out=".bench/gpu-$(date -u +%Y%m%dT%H%M%SZ).txt"
echo "uptime: $(uptime)" | tee "$out"
node dist/bench/gpu_models.js "$@" | tee -a "$out"
echo "gpu-bench: output kept in $out"
