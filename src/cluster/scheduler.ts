/**
 * Runs one round's tasks on the registry's nodes: the policy picks a node for each task that is due,
 * a rejected or lost task waits (capped exponential backoff) and goes to another node if there is
 * one, and a task that failed `maxAttempts` times fails the round. Results are kept by task index,
 * so the caller combines them in task order whatever the order of arrival. Nothing waits forever:
 * a round with no live node for `noNodeDeadlineMs`, or a task out longer than `taskTimeoutMs`, ends
 * in an error that names the nodes and what happened to them.
 */
import { SmolError } from '../util/errors.js';
import { MessageType } from '../comm/wire/frame.js';
import { retryDelayMs, type RetryPolicy } from './backoff.js';
import { sendFrame } from './link.js';
import type { TaskResult } from './messages.js';
import type { SchedulingPolicy } from './policies/policy.js';
import type { NodeEntry, NodeRegistry } from './registry.js';

export interface SchedulerOptions {
  retry: RetryPolicy;
  /** Tasks a node may hold at once. */
  slots: number;
  noNodeDeadlineMs: number;
  taskTimeoutMs: number;
}

export interface RoundTask {
  index: number;
  shard: string;
  /** The encoded TASK payload (the same bytes for every attempt). */
  payload: Uint8Array;
}

interface Pending {
  task: RoundTask;
  key: string;
  attempts: number;
  notBefore: number;
  history: string[];
  lastNode: string | null;
}

interface Out {
  pending: Pending;
  node: string;
  sentAt: number;
}

export type Log = (kind: string, fields: Record<string, unknown>) => void;

/** A round could not finish: names the task or the nodes and what happened. */
export class JobFailedError extends SmolError {
  constructor(message: string) {
    super('JOB_FAILED', message);
  }
}

/** A finished task: its result, where it ran, and how many times it was sent. */
export interface Placed {
  result: TaskResult;
  node: string;
  attempts: number;
}

interface Round {
  job: number;
  round: number;
  queue: Pending[];
  out: Map<string, Out>;
  results: Array<Placed | undefined>;
  left: number;
  resolve(results: Placed[]): void;
  reject(err: Error): void;
}

export class Scheduler {
  private current: Round | null = null;
  private timer: NodeJS.Timeout | null = null;
  private noNodeSince: number | null = null;

  constructor(
    private readonly registry: NodeRegistry,
    private readonly policy: SchedulingPolicy,
    private readonly opts: SchedulerOptions,
    private readonly log: Log,
  ) {}

  runRound(job: number, round: number, tasks: RoundTask[]): Promise<Placed[]> {
    if (this.current) throw new Error('scheduler: a round is already running');
    return new Promise((resolve, reject) => {
      this.current = {
        job,
        round,
        queue: tasks.map((task) => ({ task, key: `${job}/${round}/${task.index}`, attempts: 0, notBefore: 0, history: [], lastNode: null })),
        out: new Map(),
        results: new Array(tasks.length),
        left: tasks.length,
        resolve,
        reject,
      };
      this.noNodeSince = null;
      this.pump();
    });
  }

  /** Ends the running round with `err` (e.g. the client went away). */
  cancel(err: Error): void {
    this.finish(err);
  }

  onResult(node: NodeEntry, r: TaskResult): void {
    const cur = this.current;
    const key = `${r.job}/${r.round}/${r.task}`;
    const out = cur?.out.get(key);
    if (!cur || !out || out.node !== node.id) {
      this.log('task_result_ignored', { node: node.id, job: r.job, round: r.round, task: r.task, why: 'not in flight on this node (late or duplicate)' });
      return;
    }
    cur.out.delete(key);
    const p = out.pending;
    if (r.status === 'rejected') {
      this.registry.ended(node, key, null);
      const why = r.reason ?? 'busy';
      this.log('task_rejected', { job: cur.job, round: cur.round, task: p.task.index, shard: p.task.shard, node: node.id, attempt: p.attempts, reason: why });
      this.retry(p, `rejected by ${node.id} (${why})`);
    } else {
      this.registry.ended(node, key, r.ms);
      cur.results[p.task.index] = { result: r, node: node.id, attempts: p.attempts };
      cur.left--;
      this.log('task_done', { job: cur.job, round: cur.round, task: p.task.index, shard: p.task.shard, node: node.id, device: r.device ?? 'cpu', ms: r.ms, busy: r.busy, attempt: p.attempts, train_error: r.trainError, epochs: r.epochs });
      if (cur.left === 0) return this.finish(null);
    }
    this.pump();
  }

  /** A node died with these tasks in flight: they go back to the queue. */
  onNodeDied(node: NodeEntry, keys: string[], reason: string): void {
    const cur = this.current;
    if (!cur) return;
    for (const key of keys) {
      const out = cur.out.get(key);
      if (!out) continue;
      cur.out.delete(key);
      this.log('task_requeued', { job: cur.job, round: cur.round, task: out.pending.task.index, node: node.id, why: reason });
      this.retry(out.pending, `lost on ${node.id} (${reason})`);
    }
    this.pump();
  }

  /** Called on joins and periodically: dispatch what is due, enforce the deadlines. */
  pump(): void {
    const cur = this.current;
    if (!cur) return;
    const now = Date.now();
    this.checkDeadlines(cur, now);
    if (this.current !== cur) return;
    let wakeAt = Infinity;
    for (const p of [...cur.queue]) {
      if (p.notBefore > now) {
        wakeAt = Math.min(wakeAt, p.notBefore);
        continue;
      }
      if (!this.dispatch(cur, p, now)) break;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = wakeAt < Infinity ? setTimeout(() => this.pump(), Math.max(1, wakeAt - now)) : null;
  }

  private dispatch(cur: Round, p: Pending, now: number): boolean {
    let candidates = this.registry.candidates(this.opts.slots, p.lastNode ? new Set([p.lastNode]) : undefined);
    // "Elsewhere" when possible; the same node again when it is the only one left.
    if (candidates.length === 0 && p.lastNode) candidates = this.registry.candidates(this.opts.slots);
    if (candidates.length === 0) return false;
    const choice = this.policy.pick(candidates);
    const node = this.registry.get(choice.node.id)!;
    const conn = this.registry.connection(node)!;
    cur.queue.splice(cur.queue.indexOf(p), 1);
    p.attempts++;
    p.lastNode = node.id;
    cur.out.set(p.key, { pending: p, node: node.id, sentAt: now });
    this.registry.started(node, p.key);
    this.log('task_assigned', { job: cur.job, round: cur.round, task: p.task.index, shard: p.task.shard, node: node.id, policy: this.policy.name, why: choice.why, attempt: p.attempts });
    sendFrame(conn, MessageType.Task, p.task.payload);
    return true;
  }

  private retry(p: Pending, what: string): void {
    const cur = this.current!;
    p.history.push(what);
    if (p.attempts >= this.opts.retry.maxAttempts) {
      return this.finish(new JobFailedError(`task ${p.task.index} (${p.task.shard}) of round ${cur.round} failed ${p.attempts} times (limit ${this.opts.retry.maxAttempts}): ${summarize(p.history)}`));
    }
    const delay = retryDelayMs(p.attempts + 1, this.opts.retry);
    p.notBefore = Date.now() + delay;
    this.log('task_retry', { job: cur.job, round: cur.round, task: p.task.index, shard: p.task.shard, attempt: p.attempts + 1, delay_ms: delay, after: what });
    cur.queue.push(p);
    cur.queue.sort((a, b) => a.task.index - b.task.index);
  }

  private checkDeadlines(cur: Round, now: number): void {
    for (const [key, out] of cur.out) {
      if (now - out.sentAt <= this.opts.taskTimeoutMs) continue;
      const node = this.registry.get(out.node);
      cur.out.delete(key);
      if (node) this.registry.ended(node, key, null);
      this.log('task_timeout', { job: cur.job, round: cur.round, task: out.pending.task.index, node: out.node, waited_ms: now - out.sentAt });
      this.retry(out.pending, `no answer from ${out.node} within ${this.opts.taskTimeoutMs} ms`);
      if (this.current !== cur) return;
    }
    if (this.registry.liveCount > 0) {
      this.noNodeSince = null;
      return;
    }
    this.noNodeSince ??= now;
    if (now - this.noNodeSince >= this.opts.noNodeDeadlineMs) {
      this.finish(new JobFailedError(`round ${cur.round}: no live compute node for ${now - this.noNodeSince} ms (limit ${this.opts.noNodeDeadlineMs} ms); nodes: ${this.registry.describe()}`));
    }
  }

  private finish(err: Error | null): void {
    const cur = this.current;
    if (!cur) return;
    this.current = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const [key, out] of cur.out) {
      const node = this.registry.get(out.node);
      if (node) this.registry.ended(node, key, null);
    }
    if (err) cur.reject(err);
    else cur.resolve(cur.results as Placed[]);
  }
}

/** "rejected by A (busy) ×12; lost on B (…)": repeated reasons counted, not listed. */
function summarize(history: string[]): string {
  const counts = new Map<string, number>();
  for (const h of history) counts.set(h, (counts.get(h) ?? 0) + 1);
  return [...counts].map(([h, n]) => (n > 1 ? `${h} ×${n}` : h)).join('; ');
}
