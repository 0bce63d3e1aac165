/**
 * The dashboard's view of a coordinator's folder (src/cluster): the compute nodes and their states
 * (idle / busy / dead, and the device each trains on) with each node's states over time, the rounds of
 * each job (the page charts their errors) and where each task ran, from the coordinator's events.jsonl lines.
 */
import type { EventRecord } from '../metrics/events.js';

export interface ClusterNode {
  id: string;
  state: 'idle' | 'busy' | 'dead';
  note: string | null;
  tasksDone: number;
  /** Where the node trains its tasks (node_device: "cpu" or "webgpu"); null until its first heartbeat. */
  device: string | null;
  /** Each state the node entered and when (ms since the epoch), oldest first. */
  history: { time: number; state: ClusterNode['state'] }[];
}

/** A task that finished: which node ran it, on what, how long, at which attempt. */
export interface ClusterTask {
  job: number;
  round: number;
  task: number;
  node: string;
  device: string;
  ms: number;
  attempt: number;
  time: number;
}

export interface ClusterRound {
  job: number;
  round: number;
  validationError: number;
  trainError: number;
  ms: number;
}

export interface ClusterStatus {
  nodes: ClusterNode[];
  rounds: ClusterRound[];
  /** The latest finished tasks, oldest first. */
  tasks: ClusterTask[];
  /** When the coordinator started (the timelines' origin). */
  startedAt: number;
}

/** What the page keeps of a long job: the latest rounds, tasks and state changes per node. */
const KEEP = { rounds: 200, tasks: 300, history: 200 };

export class ClusterView {
  private readonly nodes = new Map<string, ClusterNode>();
  private readonly rounds: ClusterRound[] = [];
  private readonly tasks: ClusterTask[] = [];
  private startedAt: number | null = null;

  /** Takes the cluster events among a run's events; others are ignored. */
  add(e: EventRecord): void {
    const id = typeof e.node === 'string' ? e.node : null;
    switch (e.kind) {
      case 'coordinator_started':
        this.startedAt ??= e.time;
        return;
      case 'node_joined':
        if (id) this.enter(id, 'idle', e.time).note = typeof e.how === 'string' ? e.how : null;
        return;
      case 'node_state':
        if (id && (e.state === 'idle' || e.state === 'busy')) this.enter(id, e.state, e.time);
        return;
      case 'node_device':
        if (id && typeof e.device === 'string') this.node(id).device = e.device;
        return;
      case 'node_dead':
        if (id) this.enter(id, 'dead', e.time).note = typeof e.reason === 'string' ? e.reason : null;
        return;
      case 'node_unreachable':
        if (id) Object.assign(this.node(id), { note: typeof e.error === 'string' ? e.error : null });
        return;
      case 'task_done':
        if (id) {
          this.node(id).tasksDone++;
          keepLast(this.tasks, KEEP.tasks, {
            job: Number(e.job), round: Number(e.round), task: Number(e.task), node: id, device: typeof e.device === 'string' ? e.device : 'cpu',
            ms: Number(e.ms), attempt: Number(e.attempt ?? 1), time: e.time,
          });
        }
        return;
      case 'round':
        keepLast(this.rounds, KEEP.rounds, { job: Number(e.job), round: Number(e.round), validationError: Number(e.validation_error), trainError: Number(e.train_error), ms: Number(e.ms) });
        return;
    }
  }

  status(): ClusterStatus | null {
    if (this.startedAt === null) return null;
    const nodes = [...this.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map((n) => ({ ...n, history: n.history.slice() }));
    return { nodes, rounds: this.rounds.slice(), tasks: this.tasks.slice(), startedAt: this.startedAt };
  }

  private node(id: string): ClusterNode {
    let n = this.nodes.get(id);
    if (!n) this.nodes.set(id, (n = { id, state: 'dead', note: null, tasksDone: 0, device: null, history: [] }));
    return n;
  }

  /** The node enters `state` at `time` (a repeat of its state is not a change). */
  private enter(id: string, state: ClusterNode['state'], time: number): ClusterNode {
    const n = this.node(id);
    const last = n.history[n.history.length - 1];
    if (!last || last.state !== state) keepLast(n.history, KEEP.history, { time, state });
    n.state = state;
    return n;
  }
}

function keepLast<T>(list: T[], limit: number, item: T): void {
  list.push(item);
  if (list.length > limit) list.splice(0, list.length - limit);
}
