import { Tensor } from '../tensor/tensor.js';
import { mappedMemory } from '../tensor/boundary/host_values.js';
import { copyTo } from '../tensor/boundary/storage_copy.js';
import { CPU, deviceMemory, type Device, type Storage } from '../tensor/storage.js';
import type { Rng } from '../util/rng.js';
import { ParamArena } from './arena.js';
import { decays } from './decay.js';

/**
 * Base of every layer and model. A module registers its parameters, buffers (non-trained state
 * such as batch-norm running statistics) and child modules by name; the root model then packs all
 * parameters into one flat arena (see arena.ts), after which every parameter's data and grad are
 * views into two contiguous float32 storages. A buffer is a storage too, on the arena's device:
 * namedBuffers() gives the storages' own memory where the host maps it (the cpu device) and refuses
 * elsewhere (a GPU), where readBuffers() reads them (awaited).
 */
export abstract class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly noDecay = new Set<string>();
  private readonly buffers = new Map<string, Storage<Float32Array>>();
  private readonly children = new Map<string, Module>();
  private readonly rngs = new Map<string, Rng>();
  private arenaCache: ParamArena | null = null;

  abstract forward(x: Tensor): Tensor;

  /**
   * `decay` overrides the weight-decay rule of decay.ts (by default biases, norm parameters and
   * other 1-d parameters are not decayed).
   */
  protected registerParameter(name: string, t: Tensor, opts: { decay?: boolean } = {}): Tensor {
    t.requiresGrad = true;
    t.name = name;
    this.params.set(name, t);
    if (!decays(t, opts.decay)) this.noDecay.add(name);
    return t;
  }

  /** This module's and its children's buffer storages, with dotted names. */
  namedBufferStorages(prefix = ''): [string, Storage<Float32Array>][] {
    const out: [string, Storage<Float32Array>][] = [...this.buffers].map(([n, b]) => [prefix + n, b]);
    for (const [n, c] of this.children) out.push(...c.namedBufferStorages(`${prefix}${n}.`));
    return out;
  }

  /** Registers a buffer on the host; `to(device)` moves it with the parameters. Layers read it through buffer(). */
  protected registerBuffer(name: string, initial: Float32Array): Storage<Float32Array> {
    const s = deviceMemory(CPU).fromHost(initial);
    this.buffers.set(name, s);
    return s;
  }

  /** The storage of this module's buffer `name`, wherever it lives now (it changes on `to(device)`). */
  protected buffer(name: string): Storage<Float32Array> {
    const s = this.buffers.get(name);
    if (!s) throw new Error(`module: no buffer named ${name}`);
    return s;
  }

  /** Moves this module's own buffers to `device` (children move themselves). */
  private moveBuffers(device: Device): void {
    for (const [n, b] of this.buffers) {
      if (b.device !== device) this.buffers.set(n, copyTo(b, device));
    }
    for (const c of this.children.values()) c.moveBuffers(device);
  }

  /** A random stream the module draws from while training (e.g. dropout masks): checkpoints save its state. */
  protected registerRng(name: string, rng: Rng): Rng {
    this.rngs.set(name, rng);
    return rng;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** Parameters with dotted names, depth-first in registration order (stable across runs). */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, p] of this.params) out.push([prefix + n, p]);
    for (const [n, c] of this.children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  /**
   * Buffers' host values: where the host maps them (the cpu) the storages' own memory (writing it
   * writes the model). Elsewhere (a GPU) refused by name: use `await readBuffers()` and `writeBuffers()`.
   */
  namedBuffers(prefix = ''): [string, Float32Array][] {
    const all = this.namedBufferStorages(prefix).map(([n, b]) => [n, b, mappedMemory(b)] as const);
    const away = all.filter(([, , own]) => !own);
    if (away.length > 0) throw new Error(`namedBuffers(): buffers (${away.slice(0, 3).map(([n]) => n).join(', ')}${away.length > 3 ? ', ...' : ''}) live on ${away[0][1].device}, which the host cannot read synchronously: await module.readBuffers()`);
    return all.map(([n, , own]) => [n, own!]);
  }

  /** Buffers' values on the host on any device: owned copies (awaited). */
  async readBuffers(): Promise<[string, Float32Array][]> {
    const all = this.namedBufferStorages();
    return Promise.all(all.map(async ([n, b]): Promise<[string, Float32Array]> => [n, await b.read()]));
  }

  /** Writes host values into the buffers (in namedBuffers order); a cpu buffer's own memory writes onto itself. */
  writeBuffers(values: Float32Array[]): void {
    this.namedBufferStorages().forEach(([n, b], i) => {
      if (values[i].length !== b.size) throw new Error(`writeBuffers: ${n} holds ${b.size} values, got ${values[i].length}`);
      b.write(values[i]);
    });
  }

  namedRngs(prefix = ''): [string, Rng][] {
    const out: [string, Rng][] = [];
    for (const [n, r] of this.rngs) out.push([prefix + n, r]);
    for (const [n, c] of this.children) out.push(...c.namedRngs(`${prefix}${n}.`));
    return out;
  }

  /** Dotted names of the parameters weight decay skips. */
  noDecayNames(prefix = ''): Set<string> {
    const out = new Set<string>();
    for (const n of this.noDecay) out.add(prefix + n);
    for (const [n, c] of this.children) for (const name of c.noDecayNames(`${prefix}${n}.`)) out.add(name);
    return out;
  }

  /** Every module below this one (itself first, as ''), with dotted names. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ''), this]];
    for (const [n, c] of this.children) out.push(...c.namedModules(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /**
   * The first of parameters(), found without naming them all: the model's device, asked once a
   * decode step (naming 270 parameters a step was about 1 % of a quantized SmolLM2-135M decode's time).
   */
  firstParameter(): Tensor | undefined {
    for (const p of this.params.values()) return p;
    for (const c of this.children.values()) {
      const p = c.firstParameter();
      if (p) return p;
    }
    return undefined;
  }

  /**
   * The parameters that train (requiresGrad), in namedParameters order: what arena() packs, so the
   * optimizer, gradient exchange and checkpoints see these only. A frozen parameter (freeze(), LoRA's
   * base weights: nn/lora/) keeps a storage of its own, with no gradient and no optimizer state.
   */
  namedTrainable(prefix = ''): [string, Tensor][] {
    return this.namedParameters(prefix).filter(([, p]) => p.requiresGrad);
  }

  /**
   * Stops training the parameters `which` picks (by dotted name): they leave the arena (no gradient,
   * no optimizer state). Only before the arena exists. Returns the names frozen.
   */
  freeze(which: (name: string) => boolean): string[] {
    if (this.arenaCache) throw new Error('module.freeze(): the arena is already built; freeze parameters before training starts');
    const frozen = this.namedParameters().filter(([n]) => which(n));
    for (const [, p] of frozen) p.requiresGrad = false;
    return frozen.map(([n]) => n);
  }

  /**
   * Puts `m` in the place of the child `name` (LoRA wraps a Linear: nn/lora/): the child registry and
   * the field of the same name a forward reads (every layer names its fields as it registers them;
   * a field by another name is refused). Only before the arena exists.
   */
  replaceModule(name: string, m: Module): void {
    const old = this.children.get(name);
    if (!old) throw new Error(`module.replaceModule(): no child named ${name}`);
    if (this.arenaCache) throw new Error(`module.replaceModule(${name}): the arena is already built`);
    const fields = this as unknown as Record<string, unknown>;
    if (fields[name] !== old) throw new Error(`module.replaceModule(${name}): the module keeps that child in no field named ${name}`);
    this.children.set(name, m);
    fields[name] = m;
  }

  /** The flat parameter/gradient arena of the trainable parameters, built on first use (they become views into it). */
  arena(): ParamArena {
    if (!this.arenaCache) this.arenaCache = ParamArena.pack(this.namedTrainable(), this.noDecayNames());
    return this.arenaCache;
  }

  /**
   * Moves the parameters to `device` by building the arena there (a model is built on the host),
   * and the buffers (batch-norm running statistics) with them. Only before the arena exists, or
   * onto the device it is already on.
   */
  to(device: Device): this {
    if (this.arenaCache && this.arenaCache.device !== device) throw new Error(`module.to(${device}): its arena already lives on ${this.arenaCache.device}`);
    this.arenaCache ??= ParamArena.pack(this.namedTrainable(), this.noDecayNames(), device);
    // Frozen parameters are outside the arena: each moves on its own.
    for (const [, p] of this.namedParameters()) if (!p.requiresGrad && p.device !== device) p.bind(copyTo(p.storage as Storage<Float32Array>, device), null);
    this.moveBuffers(device);
    return this;
  }

  /**
   * Makes `arena` the one arena() returns: a strategy that shards the model (ZeRO) gives the module
   * its rank's shard, so the loop's optimizer, zeroing, clipping and checkpoints work on the shard.
   */
  useArena(arena: ParamArena): void {
    this.arenaCache = arena;
  }

  /** Number of trainable scalars. */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  train(on = true): this {
    this.training = on;
    for (const c of this.children.values()) c.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Zeroes every parameter gradient (one fill over the gradient arena; see ParamArena.zeroGrads). */
  zeroGrad(): void {
    this.arena().zeroGrads();
  }
}
