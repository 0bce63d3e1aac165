/**
 * --device cpu|gpu|auto: where a process trains. `gpu` needs a WebGPU adapter (the optional
 * `webgpu` package, Dawn, and a driver it accepts) and fails with one line without one; `auto`
 * takes a hardware adapter (never a software one such as SwiftShader) when a short GEMM
 * measurement finds it faster than the cpu backend, and the cpu otherwise.
 *
 * On the GPU the training loop keeps the model there (`module.to('webgpu')`: the parameter and
 * gradient arenas are one GPU buffer each), uploads each batch, and reads back only what the host
 * needs: each step's loss and the monitors' gradient sum of squares (one number each, awaited),
 * the gradients or parameters a strategy exchanges (train/boundary/host_arena.ts: read when the exchange
 * asks, written back after it), and the evaluation's losses and logits. Buffers (BatchNorm's
 * running statistics) move with the model and are updated there. The strategies that shard the
 * model themselves (ZeRO, tensor and pipeline parallelism) are refused on the GPU by name
 * (docs/GPU.md).
 */
import type { DeviceChoice } from '../../config/options/choices.js';
import type { BackendInfo, Kernels } from '../../tensor/backend.js';
import { WEBGPU, closeWebGpu, loadWebGpuBackend, webGpuOpened, type WebGpuBackend } from '../../tensor/backends/webgpu/index.js';
import { backend } from '../../tensor/dispatch.js';
import { CPU, deviceMemory, type Device, type DeviceBuffer } from '../../tensor/storage.js';

export interface DeviceDecision {
  device: Device;
  /** One line for stderr saying what was chosen and why (empty for a plain cpu run). */
  note: string;
  /**
   * Gives back what training on the device holds open, once the run is over: a GPU's device (Dawn
   * keeps a process alive while it is open); nothing for the cpu, so a cpu run never closes a GPU
   * that other code in the process opened.
   */
  release(): void;
}

/** A decision to train on the cpu: nothing was opened for it. */
function onCpu(note: string): DeviceDecision {
  return { device: CPU, note, release: () => {} };
}

/** Sustained GFLOP/s of `reps` n×n×n GEMMs on a backend (after one warm-up), waiting for a GPU to finish. */
export async function measureGemm(b: BackendInfo & Pick<Kernels<DeviceBuffer>, 'gemm'>, n: number, reps: number): Promise<number> {
  const memory = deviceMemory(b.device);
  const values = Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const [x, y, out] = [memory.fromHost(values), memory.fromHost(values), memory.alloc('float32', n * n)];
  const settle = async (): Promise<void> => {
    const stream = (b as Partial<WebGpuBackend>).stream;
    if (stream) await stream.finish();
  };
  b.gemm(false, false, n, n, n, 1, x.buffer, 0, y.buffer, 0, 0, out.buffer, 0, 1);
  await settle();
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) b.gemm(false, false, n, n, n, 1, x.buffer, 0, y.buffer, 0, 0, out.buffer, 0, 1);
  await settle();
  const seconds = (performance.now() - t0) / 1000;
  return (2 * n * n * n * reps) / seconds / 1e9;
}

/** How each --device choice is resolved: the cpu opens nothing; gpu insists on an adapter; auto measures one. */
const RESOLVE: Record<DeviceChoice, () => Promise<DeviceDecision>> = {
  cpu: async () => onCpu(''),
  gpu: () => openGpu(true),
  auto: () => openGpu(false),
};

export function resolveDevice(choice: DeviceChoice = 'cpu'): Promise<DeviceDecision> {
  return RESOLVE[choice]();
}

/** The GPU, when `required` (--device gpu) or when auto finds a hardware adapter faster than the cpu. */
async function openGpu(required: boolean): Promise<DeviceDecision> {
  // The GPU is released afterwards unless someone else opened it (one Dawn instance per process:
  // a second one created and dropped beside the first has aborted a process at exit).
  const ownsGpu = !webGpuOpened();
  let keep = false;
  const load = await loadWebGpuBackend();
  if (!load.backend || !load.adapter) {
    if (required) throw new Error(`--device gpu: ${load.reason}`);
    return onCpu(`--device auto: cpu (${load.reason})`);
  }
  const name = load.backend.adapterName;
  const onGpu = (note: string): DeviceDecision => ({ device: WEBGPU, note, release: closeWebGpu });
  try {
    if (required) {
      keep = true;
      return onGpu(`--device gpu: training on ${name}`);
    }
    if (load.adapter.software) return onCpu(`--device auto: cpu (${name} is a software adapter)`);
    const gpu = await measureGemm(load.backend, 512, 8);
    const cpu = await measureGemm(backend(), 512, 2);
    const figures = `GEMM 512³: ${name} ${gpu.toFixed(0)} GFLOP/s, cpu ${cpu.toFixed(0)} GFLOP/s`;
    if (gpu <= cpu) return onCpu(`--device auto: cpu (${figures})`);
    keep = true;
    return onGpu(`--device auto: ${name} (${figures})`);
  } finally {
    // The GPU stays open for the run that trains on it; it is closed when the process ends.
    if (ownsGpu && !keep) closeWebGpu();
  }
}
