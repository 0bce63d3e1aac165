/**
 * The trainer's side of the rollout workers (docs/RL.md, "Rollout workers"): one listening port
 * that workers dial and authenticate on; the weights sent to each worker as it arrives and after
 * every optimizer step (the trainable arena: the adapters alone under LoRA); a step's prompts split
 * across the live workers and their rollouts gathered. Every wait has a deadline naming the worker;
 * a worker that dies, times out or sends something malformed is named, dropped (its process, when
 * we started it, killed), and its unfinished prompts go to the other workers — or back to the
 * caller to sample in-process when none is left. Nothing here waits without a deadline.
 */
import type { ChildProcess } from 'node:child_process';
import type net from 'node:net';
import type { Connection } from '../../comm/tcp/connection.js';
import { PendingHandshakes } from '../../comm/tcp/handshake.js';
import { boundPort, listen } from '../../comm/tcp/net.js';
import { PeerError, SmolError, TimeoutError } from '../../util/errors.js';
import { acceptWorker, onMessages, sendMessage } from './link.js';
import { type RemoteCompletion, type RolloutReply, type SampleRequest, decodeRollouts, encodeSample, encodeWeightDelta, encodeWeights } from './messages.js';
import { weightDelta } from './weight_delta.js';
import { HeadReader, RolloutMessage, decodeMessage } from './wire.js';

export interface RolloutPoolOptions {
  host: string;
  /** 0: any free port (local workers are told it). */
  port: number;
  token: string;
  signature: string;
  /** Workers to wait for before the first step. */
  workers: number;
  vocabSize: number;
  /** How long the first workers may take to load their model and connect (ms). */
  startMs: number;
  /** How long one sampling request may take (ms). */
  requestMs: number;
  /** Starts local worker `index` told to dial `address` (`grpo --rollout-workers N`); absent: workers are started by hand. */
  spawn?: (address: string, index: number) => ChildProcess;
  warn: (message: string) => void;
}

/** A worker answered that it cannot sample a request: the request is at fault, not the worker (it stays). */
export class SampleRefusedError extends PeerError {}

/** One connected worker. */
class RemoteWorker {
  readonly pending = new Map<number, { request: SampleRequest; resolve: (r: RolloutReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  alive = true;
  pid = 0;
  /** The version of the weights last sent to it (-1: none): a delta goes only onto that one. */
  sentVersion = -1;

  constructor(readonly index: number, readonly conn: Connection, public name: string) {}
}

/** Rollouts of a share of the prompts, with the worker that sampled them. */
export interface PoolRollouts {
  completions: (RemoteCompletion & { version: number })[];
  /** Prompt indices (into the caller's list) no worker could serve: the caller samples them itself. */
  unserved: number[];
  /** Live workers when the step ended. */
  workers: number;
}

/** A weight sync: the delta's bytes (null: none could be made: the first sync, a new layout), the whole arena's, and which went to the workers that were kept up. */
export interface WeightSync {
  delta_bytes: number | null;
  whole_bytes: number;
  sent: 'delta' | 'whole';
}

export class RolloutPool {
  private readonly workers: RemoteWorker[] = [];
  private readonly children = new Map<number, ChildProcess>();
  private readonly pending = new PendingHandshakes();
  private nextRequest = 1;
  private weights: { version: number; layout: string; values: Float32Array } | null = null;
  private arrived: (() => void) | null = null;
  private closing = false;

  private constructor(private readonly o: RolloutPoolOptions, private readonly server: net.Server) {}

  /** Listens, starts the local workers, sends them `weights`, and waits (with `startMs`) until `workers` have said hello. */
  static async start(o: RolloutPoolOptions, weights: { version: number; layout: string; values: Float32Array }): Promise<RolloutPool> {
    let pool: RolloutPool | null = null;
    const server = await listen(o.host, o.port, (socket) => pool?.admit(socket));
    pool = new RolloutPool(o, server);
    pool.weights = weights;
    try {
      const address = `${o.host}:${boundPort(server)}`;
      for (let i = 0; i < (o.spawn ? o.workers : 0); i++) pool.startChild(address, i);
      if (!o.spawn) o.warn(`grpo: waiting for ${o.workers} rollout worker(s) on ${address} (smolcluster rollout-worker --connect ${address})`);
      await pool.awaitWorkers(o.workers, o.startMs);
      return pool;
    } catch (err) {
      await pool.close();
      throw err;
    }
  }

  get address(): string {
    return `${this.o.host}:${boundPort(this.server)}`;
  }

  get live(): number {
    return this.workers.filter((w) => w.alive && w.pid > 0).length;
  }

  /**
   * Sends the new weights to every live worker; each applies them before its next request. A
   * worker that holds the version before gets them as a lossless delta onto it (weight_delta.ts)
   * where that is the smaller message, any other the whole arena.
   */
  async sync(version: number, layout: string, values: Float32Array): Promise<WeightSync> {
    const before = this.weights;
    this.weights = { version, layout, values: values.slice() };
    const whole = encodeWeights(this.weights);
    const onto = before !== null && before.layout === layout && before.values.length === values.length ? before.version : null;
    const made = onto === null ? null : encodeWeightDelta({ version, base: onto, layout, delta: weightDelta(before!.values, values) });
    // A step that moved most weights by more than their low bits (a large learning rate) makes a delta larger than the arena.
    const delta = made !== null && made.length < whole.length ? made : null;
    await Promise.all(this.ready().map((w) => (delta !== null && w.sentVersion === onto
      ? this.sendWeights(w, RolloutMessage.WeightDelta, delta, version)
      : this.sendWeights(w, RolloutMessage.Weights, whole, version))));
    return { delta_bytes: made?.length ?? null, whole_bytes: whole.length, sent: delta !== null ? 'delta' : 'whole' };
  }

  private sendWeights(w: RemoteWorker, message: RolloutMessage, payload: Uint8Array, version: number): Promise<void> {
    w.sentVersion = version;
    return this.send(w, message, payload);
  }

  /**
   * G completions of each prompt, split across the live workers in contiguous shares; a share whose
   * worker fails goes to the next live one. `seeds[p]` seeds prompt p's first completion.
   */
  async sample(prompts: readonly (readonly number[])[], seeds: readonly number[], settings: Omit<SampleRequest, 'id' | 'prompts' | 'seeds'>): Promise<PoolRollouts> {
    const out = new Array<(RemoteCompletion & { version: number })[] | null>(prompts.length).fill(null);
    const unserved: number[] = [];
    const serve = async (share: number[], worker: RemoteWorker): Promise<void> => {
      try {
        const reply = await this.request(worker, { id: this.nextRequest++, prompts: share.map((p) => [...prompts[p]]), seeds: share.map((p) => seeds[p]), ...settings });
        for (const [k, p] of share.entries()) {
          out[p] = reply.completions.slice(k * settings.generations, (k + 1) * settings.generations).map((c) => ({ ...c, prompt: p, version: reply.version }));
        }
      } catch (err) {
        if (err instanceof SampleRefusedError) throw err; // another worker would refuse it too
        this.drop(worker, (err as Error).message);
        const next = this.ready()[0];
        if (next) {
          this.o.warn(`grpo: ${share.length} prompt(s) of ${worker.name} go to ${next.name}`);
          await serve(share, next);
        } else {
          this.o.warn(`grpo: no rollout worker is left; ${share.length} prompt(s) are sampled in the trainer's process`);
          unserved.push(...share);
        }
      }
    };
    const live = this.ready();
    if (live.length === 0) return { completions: [], unserved: prompts.map((_, p) => p), workers: 0 };
    const shares = splitEvenly(prompts.length, live.length);
    await Promise.all(shares.map((share, i) => (share.length > 0 ? serve(share, live[i]) : Promise.resolve())));
    unserved.sort((a, b) => a - b);
    return { completions: out.flatMap((c) => c ?? []), unserved, workers: this.live };
  }

  /** Says goodbye to the workers, stops the ones we started, closes the port. */
  async close(): Promise<void> {
    this.closing = true;
    for (const w of this.workers) {
      for (const p of w.pending.values()) {
        clearTimeout(p.timer);
        p.reject(new SmolError('CLOSED', 'the rollout pool closed'));
      }
      w.conn.bye(-1);
    }
    const exits = [...this.children.values()].map((child) => stopChild(child));
    await Promise.all(exits);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private ready(): RemoteWorker[] {
    return this.workers.filter((w) => w.alive && w.pid > 0);
  }

  private startChild(address: string, index: number): void {
    const child = this.o.spawn!(address, index);
    this.children.set(index, child);
    child.once('exit', (code, signal) => {
      if (this.closing) return;
      const worker = this.workers.find((w) => w.pid === child.pid && w.alive);
      const why = `exited (${signal ?? `code ${code}`})`;
      if (worker) this.drop(worker, why);
      else this.o.warn(`grpo: rollout worker ${index + 1} (pid ${child.pid}) ${why} before it connected`);
    });
  }

  /** An incoming socket: authenticated, sent the current weights, counted once it says hello. */
  private admit(socket: net.Socket): void {
    void acceptWorker(socket, this.o.token, this.o.signature, this.o.startMs, this.pending).then((conn) => {
      if (this.closing) return conn.bye(-1);
      const worker = new RemoteWorker(this.workers.length, conn, `rollout worker ${this.workers.length + 1} (${conn.remote})`);
      this.workers.push(worker);
      conn.once('closed', (err: Error | null) => this.drop(worker, err ? err.message : 'closed its connection'));
      onMessages(conn, (message, payload) => this.onMessage(worker, message, payload), (err) => this.o.warn(`grpo: refused ${worker.name}: ${err.message}`));
      if (this.weights) void this.sendWeights(worker, RolloutMessage.Weights, encodeWeights(this.weights), this.weights.version);
    }, (err: Error) => this.o.warn(`grpo: a rollout worker from ${socket.remoteAddress}:${socket.remotePort} was refused: ${err.message}`));
  }

  private onMessage(w: RemoteWorker, message: RolloutMessage, payload: Uint8Array): void {
    if (message === RolloutMessage.Hello) {
      const pid = new HeadReader(decodeMessage(payload, w.name).head, `hello from ${w.name}`).int('pid', 1);
      w.pid = pid;
      w.name = `rollout worker ${w.index + 1} (${w.conn.remote}, pid ${pid})`;
      this.arrived?.();
      return;
    }
    if (message !== RolloutMessage.Rollouts && message !== RolloutMessage.Failed) throw new SmolError('PROTOCOL', `message ${message} is not one a trainer takes`);
    const id = new HeadReader(decodeMessage(payload, w.name).head, `reply from ${w.name}`).int('id');
    const waiting = w.pending.get(id);
    if (!waiting) throw new SmolError('PROTOCOL', `a reply to request ${id}, which it was not sent (or which timed out)`);
    w.pending.delete(id);
    clearTimeout(waiting.timer);
    if (message === RolloutMessage.Failed) {
      const why = new HeadReader(decodeMessage(payload, w.name).head, `failure from ${w.name}`).string('message');
      waiting.reject(new SampleRefusedError(-1, w.name, `could not sample: ${why}`));
    } else {
      waiting.resolve(decodeRollouts(payload, w.name, waiting.request, this.o.vocabSize));
    }
  }

  private request(w: RemoteWorker, request: SampleRequest): Promise<RolloutReply> {
    return new Promise<RolloutReply>((resolve, reject) => {
      const started = Date.now();
      const timer = setTimeout(() => {
        w.pending.delete(request.id);
        reject(new TimeoutError('rollouts', [], Date.now() - started, `${w.name} did not answer ${request.prompts.length} prompt(s)`));
      }, this.o.requestMs);
      w.pending.set(request.id, { request, resolve, reject, timer });
      this.send(w, RolloutMessage.Sample, encodeSample(request)).catch(() => {}); // a failed send closes the connection: drop() rejects
    });
  }

  /** Hands a message to the OS within the request deadline: a worker that stops reading (its buffers full) is dropped, not waited on. */
  private async send(w: RemoteWorker, message: RolloutMessage, payload: Uint8Array): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.o.requestMs);
    });
    try {
      const sent = await Promise.race([sendMessage(w.conn, message, payload), late]);
      if (sent === 'late') this.drop(w, `did not take a ${payload.length}-byte ${RolloutMessage[message]} message within ${this.o.requestMs} ms`);
    } catch (err) {
      this.drop(w, `could not be sent to: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A worker is gone: named once, its waits failed, its process (if ours) killed. */
  private drop(w: RemoteWorker, why: string): void {
    if (!w.alive || this.closing) return;
    w.alive = false;
    this.o.warn(`grpo: ${w.name} dropped: ${why}`);
    for (const p of w.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new PeerError(-1, w.name, why));
    }
    w.pending.clear();
    w.conn.destroy();
    for (const [i, child] of this.children) {
      if (child.pid === w.pid) {
        this.children.delete(i);
        void stopChild(child);
      }
    }
  }

  private async awaitWorkers(count: number, ms: number): Promise<void> {
    const started = Date.now();
    while (this.ready().length < count) {
      const left = ms - (Date.now() - started);
      const exited = [...this.children.values()].filter((c) => c.exitCode !== null || c.signalCode !== null);
      if (exited.length > 0 && this.o.spawn) throw new SmolError('PEER', `grpo: ${exited.length} rollout worker(s) exited before connecting (pid ${exited.map((c) => c.pid).join(', ')}); their errors are above`);
      if (left <= 0) {
        const have = this.ready().map((w) => w.name);
        throw new TimeoutError('rollout workers', [], Date.now() - started, `${have.length} of ${count} connected${have.length ? `: ${have.join(', ')}` : ''}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.arrived = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

/** 0..n−1 in `parts` contiguous shares, sizes differing by at most one. */
export function splitEvenly(n: number, parts: number): number[][] {
  const out: number[][] = [];
  let at = 0;
  for (let i = 0; i < parts; i++) {
    const size = Math.floor(n / parts) + (i < n % parts ? 1 : 0);
    out.push(Array.from({ length: size }, (_, k) => at + k));
    at += size;
  }
  return out;
}

/** SIGTERM, then SIGKILL after 3 s; resolves when the process has gone. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
