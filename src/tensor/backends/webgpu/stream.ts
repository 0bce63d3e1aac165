/// <reference types="@webgpu/types" />
/**
 * The command stream of one GPU device: every kernel, copy and clear is encoded into one shared
 * command encoder (consecutive kernels into one compute pass) and submitted when the host needs a
 * value (a read), when too much is pending, or at the end of the event-loop turn that recorded it —
 * a synchronous training step records all its kernels in one turn, so a step is one submission.
 *
 * Kernels are written against logical buffers (kernels.ts): a GPUBuffer within the binding limit
 * (`maxBindingBytes`, the device's maxStorageBufferBindingSize) is bound whole, and the element
 * offset of the view a kernel works on travels in the kernel's uniform block — views of an arena
 * need not sit on the 256-byte binding alignment. A larger GPUBuffer (the arena of a large model)
 * is bound over the range the kernel's views of it span, its start aligned down to
 * minStorageBufferOffsetAlignment and the rest of each offset in the uniforms; kernels over a whole
 * arena are split into pieces that fit (backend.ts). Two logical buffers on the same GPUBuffer (a
 * parameter and its bias, both in the arena) share one binding: WebGPU refuses one buffer bound
 * twice where one binding writes. A pipeline is compiled once per (kernel, sharing pattern,
 * reduction variant).
 */
import { REDUCE64, reduce64, usesReduce64 } from './wgsl_reduce.js';

/** A kernel's view of device memory: elements [offset, offset + length) of a GPUBuffer. */
export interface GpuBuf {
  readonly gpu: GPUBuffer;
  readonly offset: number;
  readonly length: number;
  /** The caching allocator's lease of the buffer (caching_allocator.ts): every view carries it, so the buffer is not reused while one lives. */
  readonly lease?: object;
}

/** A parameter of a kernel's uniform block: u32, i32, f32, or an array of u32 of fixed length. */
export type ParamKind = 'u' | 'i' | 'f' | `u${number}` | `i${number}`;

export interface KernelSpec {
  name: string;
  /** Logical buffers, in the order `dispatch` receives them. */
  bufs: readonly string[];
  /** Uniform parameters by name, in the order `dispatch` receives them. */
  params: readonly (readonly [string, ParamKind])[];
  /** WGSL: helper functions and the `@compute fn main`. */
  body: string;
  /**
   * Bind the buffers as array<vec4<f32>> (each GPUBuffer a multiple of 16 bytes), adding x_at4(i):
   * the 4 elements from i, which must sit on a multiple of 4 counted from the buffer's start.
   */
  vec4?: boolean;
}

/** Uniform words per dispatch (256 bytes, the uniform binding alignment). */
const SLOT_WORDS = 64;
/** Words reserved for the buffers' element offsets. */
const OFFSET_WORDS = 8;
/** Dispatch slots per uniform chunk. */
const CHUNK_SLOTS = 256;
/** Uniform chunks kept for reuse across submissions (64 KiB each). */
const MAX_SPARE_CHUNKS = 8;
/** Submit once this many dispatches are pending (bounds the memory a long recording holds). */
const MAX_PENDING = 2000;

export const MAX_DISPATCH = 65535;

/**
 * Bytes: a binding limit lower than the device's maxStorageBufferBindingSize, for tests of arenas
 * larger than the limit on a machine whose limit is too large to reach (SwiftShader's is 1 GiB).
 */
export const MAX_BINDING_ENV = 'SMOLCLUSTER_WEBGPU_MAX_BINDING_BYTES';

/**
 * Set to 1 to bind every buffer by the range its views span, even one within the binding limit:
 * a check that every kernel stays within the views it is given, which ranged bindings rely on
 * (docs/GPU.md: the kernel parity and training tests pass under it).
 */
export const BIND_RANGES_ENV = 'SMOLCLUSTER_WEBGPU_BIND_RANGES';

/**
 * The binding limit: the device's, or the lower one MAX_BINDING_ENV asks for; in whole 256 bytes,
 * so that a range rounded up to a whole vec4 stays within it (a driver may report 2^32 - 1).
 */
function bindingLimit(device: GPUDevice): number {
  const own = Math.floor(device.limits.maxStorageBufferBindingSize / 256) * 256;
  const env = typeof process === 'undefined' ? undefined : process.env[MAX_BINDING_ENV];
  if (env === undefined || env === '') return own;
  const asked = Number(env);
  if (!Number.isInteger(asked) || asked < 4096) throw new Error(`${MAX_BINDING_ENV}=${env}: expected a whole number of bytes, at least 4096`);
  return Math.min(own, Math.floor(asked / 256) * 256);
}

/** What one kernel launch binds: the GPUBuffer ranges, and which binding each logical buffer uses. */
interface BindingPlan {
  /** Binding i + 1: bytes [byte, byte + bytes) of gpu; bytes undefined binds the whole buffer. */
  ranges: { gpu: GPUBuffer; byte: number; bytes?: number }[];
  /** The binding of each logical buffer. */
  slots: number[];
  /** Each logical buffer's first element, counted from the start of its binding. */
  bases: number[];
}

/** The end of this event-loop turn: setImmediate in Node, a zero timeout in a browser. */
const afterThisTurn: (fn: () => void) => void = typeof setImmediate === 'function' ? (fn) => setImmediate(fn) : (fn) => setTimeout(fn, 0);

interface Chunk {
  buf: GPUBuffer;
  words: Uint32Array;
  used: number;
}

export class GpuStream {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private chunks: Chunk[] = [];
  /**
   * Uniform chunks of earlier submissions, reused: queue.writeBuffer is ordered with submissions,
   * so the next flush's write lands after the work that read the old words.
   */
  private spareChunks: GPUBuffer[] = [];
  /** Buffers to destroy once the pending work is submitted (staging, uploads, disposed storages). */
  private transient: GPUBuffer[] = [];
  private pending = 0;
  private flushScheduled = false;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** Submissions so far (tests count them). */
  submissions = 0;
  /** Reads so far. */
  reads = 0;
  /**
   * Reads whose value arrived with nothing submitted after them: the host had waited on a queue
   * that was draining, with no next work for the device behind the read (tests count them).
   */
  drainedReads = 0;
  /** Dispatches of kernels with row reductions so far (tests run those on both reduction paths). */
  rowReductions = 0;
  /** Bindings of a sub-range of a GPUBuffer: one larger than the binding limit, or any under BIND_RANGES_ENV (tests count them). */
  rangedBindings = 0;
  /** Dispatches so far by kernel name (tests check which GEMM kernel ran). */
  readonly dispatches = new Map<string, number>();
  private error: Error | null = null;
  private useSubgroups: boolean;
  /**
   * The most bytes one binding spans: the device's maxStorageBufferBindingSize, or lower
   * (MAX_BINDING_ENV; tests set it) to exercise arenas larger than the limit.
   */
  maxBindingBytes: number;
  /** Where a binding may start: a multiple of this many bytes (minStorageBufferOffsetAlignment). */
  readonly bindingAlignment: number;
  /** Bind every buffer by range, even within the limit (BIND_RANGES_ENV). */
  bindRangesAlways: boolean;

  /** `subgroups`: row reductions use subgroup operations (the device must have the feature; default: when it has). */
  constructor(readonly device: GPUDevice, options: { subgroups?: boolean } = {}) {
    this.useSubgroups = false;
    this.maxBindingBytes = bindingLimit(device);
    this.bindingAlignment = device.limits.minStorageBufferOffsetAlignment;
    this.bindRangesAlways = typeof process !== 'undefined' && process.env[BIND_RANGES_ENV] === '1';
    this.setSubgroups(options.subgroups ?? device.features.has('subgroups'));
    device.addEventListener?.('uncapturederror', (ev) => {
      const msg = (ev as GPUUncapturedErrorEvent).error?.message ?? 'unknown error';
      this.error ??= new Error(`webgpu: ${msg}`);
    });
  }

  /** Whether kernels compiled from now on reduce rows with subgroup operations (wgsl_reduce.ts). */
  get subgroups(): boolean {
    return this.useSubgroups;
  }

  /**
   * Chooses the row reductions of kernels compiled from now on: subgroup operations, or the
   * workgroup-memory tree every device runs (the parity tests run both over one device).
   */
  setSubgroups(on: boolean): void {
    if (on && !this.device.features.has('subgroups')) throw new Error('webgpu: subgroups asked for, but the device was created without the "subgroups" feature');
    this.useSubgroups = on;
  }

  /** Records one kernel launch over `groups` workgroups (x, y, z). */
  dispatch(spec: KernelSpec, bufs: readonly GpuBuf[], params: readonly (number | readonly number[])[], groups: readonly [number, number?, number?]): void {
    if (bufs.length !== spec.bufs.length) throw new Error(`webgpu kernel ${spec.name}: ${bufs.length} buffers for ${spec.bufs.length}`);
    const [gx, gy = 1, gz = 1] = groups;
    if (gx === 0 || gy === 0 || gz === 0) return;
    const { ranges, slots, bases } = this.bindingPlan(spec, bufs);
    const pipeline = this.pipeline(spec, slots, ranges.length);
    if (usesReduce64(spec.body)) this.rowReductions++;
    this.dispatches.set(spec.name, (this.dispatches.get(spec.name) ?? 0) + 1);
    const { buf, offset } = this.uniforms(spec, bases, params);
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: buf, offset: offset * 4, size: SLOT_WORDS * 4 } }];
    ranges.forEach((r, i) => entries.push({ binding: i + 1, resource: r.bytes === undefined ? { buffer: r.gpu } : { buffer: r.gpu, offset: r.byte, size: r.bytes } }));
    const group = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(gx, gy, gz);
    this.recorded();
  }

  /**
   * One binding per distinct GPUBuffer (the first logical buffer on it takes it): the whole buffer
   * when it fits the binding limit, as every kernel was written for; else the range its views span.
   * Views of one large buffer too far apart for one range (two parameters of a huge arena) get one
   * binding each, if their ranges do not overlap (WebGPU refuses overlapping bindings where one
   * writes). A view past the limit on its own is refused by name: the kernels that cover a whole
   * arena split themselves first (backend.ts).
   */
  private bindingPlan(spec: KernelSpec, bufs: readonly GpuBuf[]): BindingPlan {
    const ranges: BindingPlan['ranges'] = [];
    const slots: number[] = [];
    const bind = (members: number[], range: BindingPlan['ranges'][number]): void => {
      const at = ranges.push(range) - 1;
      for (const i of members) slots[i] = at;
    };
    for (const gpu of new Set(bufs.map((b) => b.gpu))) {
      const members = bufs.flatMap((b, i) => (b.gpu === gpu ? [i] : []));
      if (gpu.size <= this.maxBindingBytes && !this.bindRangesAlways) {
        bind(members, { gpu, byte: 0 });
        continue;
      }
      const whole = this.rangeOf(gpu, members.map((i) => bufs[i]));
      if (whole.bytes! <= this.maxBindingBytes) {
        bind(members, whole);
        this.rangedBindings++;
        continue;
      }
      // One binding per distinct view (a view passed twice shares one).
      const own: { view: GpuBuf; members: number[]; range: BindingPlan['ranges'][number] }[] = [];
      for (const i of members) {
        const same = own.find((o) => o.view.offset === bufs[i].offset && o.view.length === bufs[i].length);
        if (same) same.members.push(i);
        else own.push({ view: bufs[i], members: [i], range: this.rangeOf(gpu, [bufs[i]]) });
      }
      const names = (ms: number[]): string => ms.map((i) => spec.bufs[i]).join(', ');
      for (const o of own) {
        if (o.range.bytes! > this.maxBindingBytes) {
          throw new Error(`webgpu kernel ${spec.name}: ${names(o.members)} span ${o.range.bytes} bytes of one GPU buffer (from byte ${o.range.byte}), more than one binding may (maxStorageBufferBindingSize ${this.maxBindingBytes} bytes)`);
        }
      }
      const overlap = own.find((a, x) => own.some((b, y) => y > x && a.range.byte < b.range.byte + b.range.bytes! && b.range.byte < a.range.byte + a.range.bytes!));
      if (overlap) {
        throw new Error(`webgpu kernel ${spec.name}: ${names(members)} span ${whole.bytes} bytes of one GPU buffer, more than one binding may (maxStorageBufferBindingSize ${this.maxBindingBytes} bytes), and their own ranges overlap`);
      }
      for (const o of own) {
        bind(o.members, o.range);
        this.rangedBindings++;
      }
    }
    const bases = bufs.map((b, i) => b.offset - ranges[slots[i]].byte / 4);
    return { ranges, slots, bases };
  }

  /** The range views of `gpu` span: started on the binding alignment, ended on a whole vec4 (KernelSpec.vec4). */
  private rangeOf(gpu: GPUBuffer, views: readonly GpuBuf[]): { gpu: GPUBuffer; byte: number; bytes: number } {
    const lo = Math.min(...views.map((v) => v.offset * 4));
    const hi = Math.max(...views.map((v) => (v.offset + v.length) * 4));
    const byte = Math.floor(lo / this.bindingAlignment) * this.bindingAlignment;
    return { gpu, byte, bytes: Math.min(gpu.size - byte, Math.max(16, Math.ceil((hi - byte) / 16) * 16)) };
  }

  /** Copies bytes between buffers, in stream order. */
  copy(src: GPUBuffer, srcByte: number, dst: GPUBuffer, dstByte: number, bytes: number): void {
    if (bytes === 0) return;
    this.endPass().copyBufferToBuffer(src, srcByte, dst, dstByte, bytes);
    this.recorded();
  }

  /** Zeroes bytes of a buffer, in stream order. */
  clear(dst: GPUBuffer, byte: number, bytes: number): void {
    if (bytes === 0) return;
    this.endPass().clearBuffer(dst, byte, bytes);
    this.recorded();
  }

  /** A buffer holding `data`, readable by kernels from now on; destroyed after the next submission. */
  upload(data: ArrayBufferView, usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC): GPUBuffer {
    const size = Math.max(4, Math.ceil(data.byteLength / 4) * 4);
    const buf = this.device.createBuffer({ size, usage, mappedAtCreation: true });
    new Uint8Array(buf.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buf.unmap();
    this.transient.push(buf);
    return buf;
  }

  /** Destroys a buffer once what is recorded so far has been submitted. */
  release(buf: GPUBuffer): void {
    this.transient.push(buf);
  }

  /** Submits everything recorded. */
  flush(): void {
    this.throwIfFailed();
    if (!this.encoder) return;
    this.endPass();
    for (const c of this.chunks) this.device.queue.writeBuffer(c.buf, 0, c.words.buffer, 0, c.used * SLOT_WORDS * 4);
    this.device.queue.submit([this.encoder.finish()]);
    this.submissions++;
    for (const c of this.chunks) {
      if (this.spareChunks.length < MAX_SPARE_CHUNKS) this.spareChunks.push(c.buf);
      else c.buf.destroy();
    }
    for (const b of this.transient) b.destroy();
    this.chunks = [];
    this.transient = [];
    this.encoder = null;
    this.pending = 0;
  }

  /** Bytes [byte, byte + bytes) of a buffer, on the host once the stream has run up to here. */
  async read(src: GPUBuffer, byte: number, bytes: number): Promise<ArrayBuffer> {
    const size = Math.max(4, bytes);
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.copy(src, byte, staging, 0, bytes);
    this.flush();
    this.reads++;
    const submitted = this.submissions;
    await staging.mapAsync(GPUMapMode.READ);
    if (this.submissions === submitted) this.drainedReads++;
    const out = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    staging.destroy();
    this.throwIfFailed();
    return out;
  }

  /** Waits until the GPU has run everything submitted (benchmarks). */
  async finish(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.error) {
      const e = this.error;
      this.error = null;
      throw e;
    }
  }

  private recorded(): void {
    if (++this.pending >= MAX_PENDING) {
      this.flush();
      return;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      afterThisTurn(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  private commandEncoder(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  private computePass(): GPUComputePassEncoder {
    this.pass ??= this.commandEncoder().beginComputePass();
    return this.pass;
  }

  private endPass(): GPUCommandEncoder {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    return this.commandEncoder();
  }

  /** Writes a launch's uniform slot: each logical buffer's first element within its binding (`bases`), then the parameters. */
  private uniforms(spec: KernelSpec, bases: readonly number[], params: readonly (number | readonly number[])[]): { buf: GPUBuffer; offset: number } {
    let chunk = this.chunks[this.chunks.length - 1];
    if (!chunk || chunk.used === CHUNK_SLOTS) {
      chunk = {
        buf: this.spareChunks.pop() ?? this.device.createBuffer({ size: CHUNK_SLOTS * SLOT_WORDS * 4, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }),
        words: new Uint32Array(CHUNK_SLOTS * SLOT_WORDS),
        used: 0,
      };
      this.chunks.push(chunk);
    }
    const base = chunk.used * SLOT_WORDS;
    chunk.used++;
    const w = chunk.words;
    const f = new Float32Array(w.buffer);
    const iw = new Int32Array(w.buffer);
    bases.forEach((b, i) => { w[base + i] = b; });
    let at = base + OFFSET_WORDS;
    spec.params.forEach(([name, kind], i) => {
      const v = params[i];
      if (v === undefined) throw new Error(`webgpu kernel ${spec.name}: parameter ${name} missing`);
      if (kind === 'f') f[at++] = v as number;
      else if (kind === 'u') w[at++] = v as number;
      else if (kind === 'i') iw[at++] = v as number;
      else {
        const len = Number(kind.slice(1));
        const arr = v as readonly number[];
        for (let k = 0; k < len; k++) iw[at + k] = arr[k] ?? 0;
        at += len;
      }
    });
    if (at > base + SLOT_WORDS) throw new Error(`webgpu kernel ${spec.name}: too many parameters`);
    return { buf: chunk.buf, offset: base };
  }

  private pipeline(spec: KernelSpec, slots: number[], bindings: number): GPUComputePipeline {
    const subgroups = this.useSubgroups && usesReduce64(spec.body);
    const key = `${spec.name}|${slots.join(',')}|${subgroups ? 'sg' : 'wg'}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const module = this.device.createShaderModule({ label: spec.name, code: wgslOf(spec, slots, bindings, { subgroups }) });
      p = this.device.createComputePipeline({ label: spec.name, layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(key, p);
    }
    return p;
  }
}

/**
 * The kernel's WGSL: the uniform block, one binding per distinct GPUBuffer, and per logical
 * buffer `x`: x_at(i) (read f32), x_int(i) (read i32), x_set(i, v), x_inc(i, v) (+=); per
 * parameter `p`: P_p() (or P_p(k) for an array). The REDUCE64 marker in the body becomes the row
 * reductions, with subgroup operations when `subgroups` is set.
 */
export function wgslOf(spec: KernelSpec, slots: number[], bindings: number, options: { subgroups?: boolean } = {}): string {
  const subgroups = options.subgroups === true && usesReduce64(spec.body);
  const lines: string[] = [
    ...(subgroups ? ['enable subgroups;'] : []),
    'struct Uniforms { v: array<vec4<u32>, 16> };',
    '@group(0) @binding(0) var<uniform> U: Uniforms;',
    'fn uw(i: u32) -> u32 { return U.v[i / 4u][i % 4u]; }',
  ];
  const element = spec.vec4 ? 'vec4<f32>' : 'f32';
  for (let b = 0; b < bindings; b++) lines.push(`@group(0) @binding(${b + 1}) var<storage, read_write> s${b}: array<${element}>;`);
  spec.bufs.forEach((name, i) => {
    if (spec.vec4) {
      lines.push(...vec4Accessors(name, `s${slots[i]}`, i));
      return;
    }
    const s = `s${slots[i]}`;
    const at = `uw(${i}u) + i`;
    lines.push(
      `fn ${name}_at(i: u32) -> f32 { return ${s}[${at}]; }`,
      `fn ${name}_int(i: u32) -> i32 { return bitcast<i32>(${s}[${at}]); }`,
      `fn ${name}_set(i: u32, v: f32) { ${s}[${at}] = v; }`,
      `fn ${name}_seti(i: u32, v: i32) { ${s}[${at}] = bitcast<f32>(v); }`,
      `fn ${name}_inc(i: u32, v: f32) { ${s}[${at}] += v; }`,
    );
  });
  let at = OFFSET_WORDS;
  for (const [name, kind] of spec.params) {
    if (kind === 'f') lines.push(`fn P_${name}() -> f32 { return bitcast<f32>(uw(${at}u)); }`);
    else if (kind === 'u') lines.push(`fn P_${name}() -> u32 { return uw(${at}u); }`);
    else if (kind === 'i') lines.push(`fn P_${name}() -> i32 { return bitcast<i32>(uw(${at}u)); }`);
    else {
      const len = Number(kind.slice(1));
      const t = kind[0] === 'i' ? 'i32' : 'u32';
      lines.push(`fn P_${name}(k: u32) -> ${t} { return bitcast<${t}>(uw(${at}u + k)); }`);
      at += len - 1;
    }
    at++;
  }
  lines.push(spec.body.replace(REDUCE64, reduce64(subgroups)));
  return lines.join('\n');
}

/** The accessors of a buffer bound as array<vec4<f32>>: element j is component j % 4 of vec4 j / 4. */
function vec4Accessors(name: string, s: string, i: number): string[] {
  const el = `${s}[j >> 2u][j & 3u]`;
  return [
    `fn ${name}_at(i: u32) -> f32 { let j = uw(${i}u) + i; return ${el}; }`,
    `fn ${name}_at4(i: u32) -> vec4<f32> { return ${s}[(uw(${i}u) + i) >> 2u]; }`,
    `fn ${name}_int(i: u32) -> i32 { let j = uw(${i}u) + i; return bitcast<i32>(${el}); }`,
    `fn ${name}_set(i: u32, v: f32) { let j = uw(${i}u) + i; ${el} = v; }`,
    `fn ${name}_seti(i: u32, v: i32) { let j = uw(${i}u) + i; ${el} = bitcast<f32>(v); }`,
    `fn ${name}_inc(i: u32, v: f32) { let j = uw(${i}u) + i; ${el} += v; }`,
  ];
}

/** Workgroups for n items of `per` each, folded into 2-d when past the 65,535 limit of one dimension. */
export function groupsFor(n: number, per: number): [number, number] {
  const total = Math.ceil(n / per);
  if (total <= MAX_DISPATCH) return [total, 1];
  const y = Math.ceil(total / MAX_DISPATCH);
  return [Math.ceil(total / y), y];
}
