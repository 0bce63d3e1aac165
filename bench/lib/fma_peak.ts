/**
 * The GPU's fp32 peak, measured: a WGSL kernel in which every invocation runs CHAINS independent
 * vec4 FMA chains (so no FMA waits on the one before it), unrolled UNROLL times per loop turn (so
 * the loop's own instructions are a few percent of the work), over enough workgroups to fill every
 * core of the GPU several times. GFLOP/s = 2 × FMAs / the time to the GPU's completion. GEMM and
 * training figures are read against this rather than against a datasheet's number.
 *
 * The multiplier and addend are uniforms (1 and 0), so the compiler cannot fold the chains away,
 * and the result is known exactly: each invocation writes the sum of its chains' start values,
 * which the probe checks — a kernel that did not run (or ran something else) is refused.
 */
import type { KernelSpec, GpuStream } from '../../src/tensor/backends/webgpu/stream.js';
import { groupsFor } from '../../src/tensor/backends/webgpu/stream.js';

const CHAINS = 8;
const UNROLL = 4;
const WORKGROUP = 256;
/** FLOPs of one invocation's loop turn: chains × unroll × 4 lanes × 2 (multiply and add). */
export const FLOPS_PER_TURN = CHAINS * UNROLL * 4 * 2;

function chainStart(c: number): string {
  return `vec4<f32>(s + ${c}.0, s + ${c}.25, s + ${c}.5, s + ${c}.75)`;
}

/** The start value of chain c's four lanes for invocation i (the host's copy of the WGSL above). */
function expectedSum(i: number): number {
  const s = Math.fround((i & 7) * 0.125);
  let sum = 0;
  for (let c = 0; c < CHAINS; c++) for (const q of [0, 0.25, 0.5, 0.75]) sum += Math.fround(s + c + q);
  return sum;
}

export const FMA_PROBE: KernelSpec = {
  name: 'fmaPeakProbe',
  bufs: ['y'],
  params: [['turns', 'u'], ['mul', 'f'], ['add', 'f'], ['n', 'u']],
  body: `
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * ${WORKGROUP}u;
  let s = f32(i & 7u) * 0.125;
  let b = vec4<f32>(P_mul());
  let c = vec4<f32>(P_add());
${Array.from({ length: CHAINS }, (_, k) => `  var a${k} = ${chainStart(k)};`).join('\n')}
  for (var t = 0u; t < P_turns(); t++) {
${Array.from({ length: UNROLL }, () => Array.from({ length: CHAINS }, (_, k) => `    a${k} = fma(a${k}, b, c);`).join('\n')).join('\n')}
  }
  if (i < P_n()) {
    let total = ${Array.from({ length: CHAINS }, (_, k) => `a${k}`).join(' + ')};
    y_set(i, total.x + total.y + total.z + total.w);
  }
}
`,
};

export interface Fp32Peak {
  gflops: number;
  invocations: number;
  turns: number;
  reps: number;
}

/**
 * Runs the probe: one untimed dispatch (compiles the pipeline, wakes the GPU), then `reps`
 * dispatches timed together to the GPU's completion. `invocations` should be several times what
 * the GPU holds at once (an H100 holds 132 SMs × 2,048).
 */
export async function measureFp32Peak(stream: GpuStream, options: { invocations: number; turns: number; reps: number }): Promise<Fp32Peak> {
  const { invocations, turns, reps } = options;
  const groups = groupsFor(invocations, WORKGROUP);
  const threads = groups[0] * groups[1] * WORKGROUP;
  const gpu = stream.device.createBuffer({ size: threads * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const y = { gpu, offset: 0, length: threads };
  try {
    const run = (): void => stream.dispatch(FMA_PROBE, [y], [turns, 1, 0, threads], groups);
    run();
    await stream.finish();
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) run();
    await stream.finish();
    const seconds = (performance.now() - t0) / 1000;
    const out = new Float32Array(await stream.read(gpu, 0, threads * 4));
    for (const i of [0, 1, 7, threads - 1]) {
      const want = Math.fround(expectedSum(i));
      if (Math.abs(out[i] - want) > 1e-3 * Math.abs(want)) throw new Error(`fp32 peak probe: invocation ${i} wrote ${out[i]}, expected ${want}`);
    }
    return { gflops: (threads * turns * FLOPS_PER_TURN * reps) / seconds / 1e9, invocations: threads, turns, reps };
  } finally {
    stream.release(gpu);
  }
}
