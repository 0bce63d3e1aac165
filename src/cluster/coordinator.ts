/**
 * The coordinator: accepts jobs from clients (queued, one at a time), and runs each job's rounds on
 * the compute nodes it knows — nodes that registered themselves, and nodes listed in a nodes file
 * that it dials (the file is re-read, so nodes can be added while it runs). Every connection is
 * authenticated (HMAC handshake); a peer that sends garbage, the wrong token or a message out of
 * place is dropped alone, and the coordinator serves on. Every decision goes to events.jsonl.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import { join } from 'node:path';
import { commLog } from '../comm/log.js';
import type { Connection } from '../comm/tcp/connection.js';
import { logRefused, PendingHandshakes } from '../comm/tcp/handshake.js';
import { boundPort, listen } from '../comm/tcp/net.js';
import { MessageType } from '../comm/wire/frame.js';
import { EventLog, eventsFile } from '../metrics/events.js';
import { ProtocolError, SmolError } from '../util/errors.js';
import { DEFAULT_RETRY, type RetryPolicy } from './backoff.js';
import { resultFile, runJob } from './job.js';
import { lettersParamCount } from './letters_model.js';
import { acceptCluster, dialCluster, onFrames, sendFrame } from './link.js';
import { decodeHeartbeat, decodeJob, decodeRegister, decodeTaskResult, encode, type JobSpec, type JobUpdate } from './messages.js';
import { readNodesFile } from './nodes_file.js';
import { makePolicy, type PolicyName, type SchedulingPolicy } from './policies/index.js';
import { canonicalHost, type NodeEntry, NodeRegistry } from './registry.js';
import { Scheduler } from './scheduler.js';

export interface CoordinatorOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  token: string;
  policy: PolicyName;
  /** Seeds the random policy. */
  seed: number;
  /** compute_nodes.txt: dialed, and re-read every `rescanMs`. */
  nodesFile?: string;
  /** events.jsonl and jobs/job-<id>/result.json go here. */
  outDir: string;
  /** A node silent this long is dead. */
  deadAfterMs: number;
  rescanMs: number;
  handshakeTimeoutMs: number;
  retry: RetryPolicy;
  slots: number;
  noNodeDeadlineMs: number;
  taskTimeoutMs: number;
  /** Every event as it is written (the CLI prints some). */
  onEvent?: (kind: string, fields: Record<string, unknown>) => void;
}

export const COORDINATOR_DEFAULTS = {
  deadAfterMs: 5000,
  rescanMs: 1000,
  handshakeTimeoutMs: 5000,
  retry: DEFAULT_RETRY,
  slots: 1,
  noNodeDeadlineMs: 30_000,
  taskTimeoutMs: 600_000,
};

interface QueuedJob {
  id: number;
  spec: JobSpec;
  client: Connection;
}

export class Coordinator {
  private server: net.Server | null = null;
  private readonly pending = new PendingHandshakes();
  private readonly events: EventLog;
  private readonly registry: NodeRegistry;
  private readonly policy: SchedulingPolicy;
  private readonly scheduler: Scheduler;
  private readonly queue: QueuedJob[] = [];
  private readonly peers = new Set<Connection>();
  private running: QueuedJob | null = null;
  private jobs = 0;
  private ticker: NodeJS.Timeout | null = null;
  private lastRescan = 0;
  private closed = false;

  private constructor(private readonly opts: CoordinatorOptions) {
    this.events = new EventLog(eventsFile(opts.outDir), { reset: true });
    this.policy = makePolicy(opts.policy, opts.seed);
    this.registry = new NodeRegistry(opts.deadAfterMs, {
      joined: (n, how) => this.log('node_joined', { node: n.id, how }),
      died: (n, reason, tasks) => {
        this.log('node_dead', { node: n.id, reason, tasks_requeued: tasks.length });
        this.scheduler.onNodeDied(n, tasks, reason);
      },
      stateChanged: (n) => this.log('node_state', { node: n.id, state: n.state, in_flight: n.inFlight.size }),
      deviceChanged: (n) => this.log('node_device', { node: n.id, device: n.device }),
    });
    this.scheduler = new Scheduler(this.registry, this.policy, opts, (kind, fields) => this.log(kind, fields));
  }

  static async start(opts: CoordinatorOptions): Promise<Coordinator> {
    mkdirSync(opts.outDir, { recursive: true });
    if (opts.nodesFile) readNodesFile(opts.nodesFile); // a malformed file stops the start, with its line
    const c = new Coordinator(opts);
    c.server = await listen(opts.host, opts.port, (socket) => c.onSocket(socket));
    c.log('coordinator_started', { port: c.port, policy: opts.policy, nodes_file: opts.nodesFile ?? null, pid: process.pid });
    c.ticker = setInterval(() => c.tick(), Math.max(20, Math.min(250, opts.deadAfterMs / 4)));
    c.tick();
    return c;
  }

  get port(): number {
    return boundPort(this.server!);
  }

  get liveNodes(): number {
    return this.registry.liveCount;
  }

  /** Every known node with its state and device (null until its first heartbeat), by id. */
  get nodes(): Array<{ id: string; state: NodeEntry['state']; device: NodeEntry['device'] }> {
    return this.registry.all.map((n) => ({ id: n.id, state: n.state, device: n.device }));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    this.scheduler.cancel(new SmolError('CLOSED', 'the coordinator is shutting down'));
    for (const p of this.peers) p.destroy();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.events.close();
  }

  private log(kind: string, fields: Record<string, unknown>): void {
    this.events.emit(kind, fields);
    this.opts.onEvent?.(kind, fields);
  }

  private tick(): void {
    this.registry.checkHeartbeats();
    const now = Date.now();
    if (this.opts.nodesFile && now - this.lastRescan >= this.opts.rescanMs) {
      this.lastRescan = now;
      this.rescan(this.opts.nodesFile);
    }
    this.scheduler.pump();
  }

  /** Re-reads the nodes file and dials each listed node that is not live. A bad file keeps the old list. */
  private rescan(file: string): void {
    let listed;
    try {
      listed = readNodesFile(file);
    } catch (err) {
      this.log('nodes_file_error', { file, error: (err as Error).message });
      return;
    }
    for (const a of listed) {
      const node = this.registry.ensureListed(a.host, a.port);
      if (node.state !== 'dead' || node.dialing || this.closed) continue;
      node.dialing = true;
      dialCluster(a.host, a.port, `compute node ${node.id}`, this.opts.token, 0, this.opts.handshakeTimeoutMs) // the next rescan dials again
        .then((conn) => this.adoptNode(conn, node.host, node.port, 'dialed (listed in the nodes file)', 'file'))
        .catch((err: Error) => {
          if (node.note !== err.message) this.log('node_unreachable', { node: node.id, error: err.message });
          node.note = err.message;
        })
        .finally(() => (node.dialing = false));
    }
  }

  private onSocket(socket: net.Socket): void {
    if (this.closed) return void socket.destroy();
    acceptCluster(socket, this.opts.token, this.opts.handshakeTimeoutMs, this.pending)
      .then((conn) => this.serve(conn))
      .catch((err: Error) => {
        logRefused('coordinator refused a connection', err);
        this.log('peer_refused', { peer: `${socket.remoteAddress}:${socket.remotePort}`, error: err.message });
      });
  }

  /** An accepted peer says what it is with its first message: REGISTER (a node) or JOB_SUBMIT (a client). */
  private serve(conn: Connection): void {
    this.track(conn);
    onFrames(conn, (type, payload) => {
      if (type === MessageType.Register) {
        const r = decodeRegister(payload);
        const host = canonicalHost(conn.socket.remoteAddress ?? '127.0.0.1');
        this.adoptNode(conn, host, r.port, 'registered', 'registered');
      } else if (type === MessageType.JobSubmit) {
        this.submit(conn, decodeJob(payload));
      } else if (type !== MessageType.Bye) {
        throw new ProtocolError(`unexpected ${MessageType[type] ?? type} frame from an unregistered peer`);
      }
    });
  }

  private adoptNode(conn: Connection, host: string, port: number, how: string, source: NodeEntry['source']): void {
    this.track(conn);
    const node = this.registry.attach(host, port, conn, how, source);
    onFrames(conn, (type, payload) => {
      if (type === MessageType.Heartbeat) {
        this.registry.heartbeat(node, decodeHeartbeat(payload).device);
      } else if (type === MessageType.TaskResult) {
        const result = decodeTaskResult(payload, (job) => (this.running?.id === job ? lettersParamCount(this.running.spec.hidden) : null));
        this.registry.heartbeat(node, result.device);
        this.scheduler.onResult(node, result);
      } else if (type !== MessageType.Bye && type !== MessageType.Register) {
        throw new ProtocolError(`unexpected ${MessageType[type] ?? type} frame from compute node ${node.id}`);
      }
    });
    this.scheduler.pump();
  }

  private track(conn: Connection): void {
    if (this.peers.has(conn)) return;
    this.peers.add(conn);
    conn.on('closed', (err: Error | null) => {
      this.peers.delete(conn);
      if (err && !(err instanceof SmolError && err.code === 'CLOSED')) commLog('debug', `coordinator: ${conn.remote} dropped: ${err.message}`);
      if (this.running?.client === conn) this.scheduler.cancel(new SmolError('CLIENT_GONE', `the client of job ${this.running.id} disconnected`));
    });
  }

  private submit(client: Connection, spec: JobSpec): void {
    const job: QueuedJob = { id: ++this.jobs, spec, client };
    const ahead = this.queue.length + (this.running ? 1 : 0);
    this.queue.push(job);
    this.log('job_queued', { job: job.id, client: client.remote, ahead, rounds: spec.rounds, epochs: spec.epochs, hidden: spec.hidden, lr: spec.lr, shards: spec.shards.length });
    this.update(job, { state: 'queued', job: job.id, ahead });
    if (!this.running) void this.drain();
  }

  private update(job: QueuedJob, u: JobUpdate): void {
    sendFrame(job.client, MessageType.JobUpdate, encode(u));
  }

  private async drain(): Promise<void> {
    for (let job = this.queue.shift(); job && !this.closed; job = this.queue.shift()) {
      this.running = job;
      await this.runOne(job);
      this.running = null;
    }
  }

  private async runOne(job: QueuedJob): Promise<void> {
    if (!job.client.isOpen) return void this.log('job_cancelled', { job: job.id, reason: 'the client disconnected while queued' });
    this.log('job_started', { job: job.id, policy: this.policy.name });
    this.update(job, { state: 'started', job: job.id });
    try {
      const result = await runJob(job.spec, {
        id: job.id,
        policy: this.policy,
        runRound: (round, tasks) => this.scheduler.runRound(job.id, round, tasks),
        onRound: (r) => {
          this.log('round', { job: job.id, round: r.round, validation_error: r.validationError, train_error: r.trainError, ms: r.ms, nodes: r.tasks.map((t) => t.node), devices: r.tasks.map((t) => t.device) });
          this.update(job, { state: 'round', job: job.id, ...r });
        },
      });
      const dir = join(this.opts.outDir, 'jobs', `job-${job.id}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'result.json'), resultFile(result));
      this.log('job_done', { job: job.id, validation_error: result.validationError, ms: result.ms });
      this.update(job, { state: 'done', job: job.id, validationError: result.validationError, ms: result.ms, result: { ...result } });
    } catch (err) {
      const message = (err as Error).message;
      this.log('job_failed', { job: job.id, error: message });
      this.update(job, { state: 'failed', job: job.id, message });
    }
  }
}
