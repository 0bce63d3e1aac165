/**
 * A compute node: listens for the coordinator (which dials nodes listed in its nodes file) and, when
 * given the coordinator's address, registers there itself — and again after every lost connection,
 * so a restarted node rejoins at once. On every coordinator connection it sends heartbeats, also while
 * it trains (training yields between epochs). Tasks are trained one at a time, through the same model
 * code on every node (the same bits for the same task on every cpu node). The node's device (its
 * --device) is where all its tasks train; it travels in every heartbeat and task result, so the
 * coordinator knows and records it.
 *
 * With load probability p the node is "busy" for a task with probability p: it rejects the task when
 * the task allows it (the least-loaded policy), else it delays it by `busyDelayMs` (the original slept
 * 3 s) before training.
 */
import type net from 'node:net';
import type { Connection } from '../comm/tcp/connection.js';
import { logRefused, PendingHandshakes } from '../comm/tcp/handshake.js';
import { boundPort, listen } from '../comm/tcp/net.js';
import { MessageType } from '../comm/wire/frame.js';
import { ProtocolError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { fitShardInSlices, lettersParamCount, type LocalFit } from './letters_model.js';
import { acceptCluster, dialCluster, onFrames, sendFrame } from './link.js';
import { decodeTask, encode, encodeTaskResult, type NodeDevice, type Task, type TaskResult } from './messages.js';

/**
 * Training hands the event loop a turn this often, so heartbeats (and new tasks, and the coordinator
 * closing) are not held up by a long task: well under any heartbeat interval, and long enough that
 * the turns cost nothing measurable.
 */
const TRAIN_SLICE_MS = 50;

export interface ComputeNodeOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  token: string;
  /** Register with this coordinator (and re-register after losing it). */
  coordinator?: { host: string; port: number };
  loadProbability: number;
  busyDelayMs: number;
  heartbeatMs: number;
  /** Seeds the busy draws. */
  seed: number;
  handshakeTimeoutMs: number;
  /** Where this node trains its tasks (its --device, resolved; default the cpu): every task it runs. */
  device?: NodeDevice;
  /** One line per notable thing (the CLI prints them). */
  onLog?: (line: string) => void;
}

export class ComputeNode {
  private server: net.Server | null = null;
  private readonly pending = new PendingHandshakes();
  private readonly links = new Set<Connection>();
  private readonly rng: Rng;
  private work: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private heartbeat: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(private readonly opts: ComputeNodeOptions) {
    this.rng = new Rng(opts.seed);
  }

  static async start(opts: ComputeNodeOptions): Promise<ComputeNode> {
    const n = new ComputeNode(opts);
    n.server = await listen(opts.host, opts.port, (socket) => n.onSocket(socket));
    n.heartbeat = setInterval(() => n.beat(), opts.heartbeatMs);
    if (opts.coordinator) void n.register(opts.coordinator);
    return n;
  }

  get device(): NodeDevice {
    return this.opts.device ?? 'cpu';
  }

  get port(): number {
    return boundPort(this.server!);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const c of this.links) c.bye(-1);
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  private onSocket(socket: net.Socket): void {
    acceptCluster(socket, this.opts.token, this.opts.handshakeTimeoutMs, this.pending)
      .then((conn) => this.serve(conn))
      .catch((err: Error) => logRefused('compute node refused a connection', err));
  }

  /** Dials the coordinator and registers, again after each loss, until closed. */
  private async register(at: { host: string; port: number }): Promise<void> {
    let wait = 100;
    while (!this.closed) {
      try {
        const conn = await dialCluster(at.host, at.port, 'the coordinator', this.opts.token, this.opts.handshakeTimeoutMs);
        sendFrame(conn, MessageType.Register, encode({ port: this.port, loadProbability: this.opts.loadProbability }));
        this.opts.onLog?.(`registered with the coordinator at ${at.host}:${at.port}`);
        this.serve(conn);
        wait = 100;
        await new Promise((resolve) => conn.once('closed', resolve));
        if (!this.closed) this.opts.onLog?.(`lost the coordinator at ${at.host}:${at.port}; registering again`);
      } catch (err) {
        this.opts.onLog?.(`cannot register with ${at.host}:${at.port}: ${(err as Error).message}`);
        wait = Math.min(wait * 2, 2000);
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  private serve(conn: Connection): void {
    this.links.add(conn);
    conn.on('closed', () => this.links.delete(conn));
    this.beatOn(conn);
    onFrames(conn, (type, payload) => {
      if (type === MessageType.Bye) return;
      if (type !== MessageType.Task) throw new ProtocolError(`unexpected ${MessageType[type] ?? type} frame on a compute node`);
      this.accept(conn, decodeTask(payload, lettersParamCount));
    });
  }

  private beat(): void {
    for (const c of this.links) this.beatOn(c);
  }

  private beatOn(conn: Connection): void {
    sendFrame(conn, MessageType.Heartbeat, encode({ inFlight: this.inFlight, device: this.device }));
  }

  private accept(conn: Connection, task: Task): void {
    const t0 = performance.now();
    const busy = this.rng.uniform() < this.opts.loadProbability;
    if (busy && task.allowReject) return this.reply(conn, task, t0, true, null);
    this.inFlight++;
    const delay = busy ? this.opts.busyDelayMs : 0;
    const before = this.work;
    const train = async (): Promise<void> => {
      if (!conn.isOpen) return; // the coordinator gave up on us meanwhile
      const shard = { name: task.shard, rows: task.rows, features: task.features, labels: task.labels };
      let fit: LocalFit;
      try {
        fit = await fitShardInSlices({ hidden: task.hidden, start: task.weights, shard, epochs: task.epochs, lr: task.lr, precision: task.precision, device: this.device }, TRAIN_SLICE_MS);
      } catch (err) {
        // Refused with the reason, so the coordinator retries it elsewhere (a bf16 task on a GPU
        // node goes to a cpu node) instead of waiting out the task timeout.
        this.opts.onLog?.(`task ${task.task} of round ${task.round} failed: ${(err as Error).message}`);
        return this.reply(conn, task, t0, busy, null, (err as Error).message);
      }
      this.reply(conn, task, t0, busy, fit);
    };
    // A busy node waits (the delays of several tasks overlap), then trains one task at a time.
    this.work = (async () => {
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      await before;
      await train();
    })()
      .catch((err: Error) => this.opts.onLog?.(`task ${task.task} of round ${task.round} failed: ${err.message}`))
      .finally(() => this.inFlight--);
  }

  private reply(conn: Connection, task: Task, t0: number, busy: boolean, fit: LocalFit | null, reason?: string): void {
    const result: TaskResult = {
      job: task.job,
      round: task.round,
      task: task.task,
      status: fit ? 'done' : 'rejected',
      trainError: fit?.trainError ?? 0,
      trainLoss: fit?.trainLoss ?? 0,
      epochs: fit?.epochs ?? 0,
      ms: performance.now() - t0,
      busy,
      device: this.device,
      ...(reason === undefined ? {} : { reason: reason.slice(0, 1024) }),
      delta: fit?.delta ?? new Float32Array(0),
    };
    sendFrame(conn, MessageType.TaskResult, encodeTaskResult(result));
  }
}
