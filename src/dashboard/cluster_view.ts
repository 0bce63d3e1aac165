/**
 * The dashboard's view of a coordinator's folder (src/cluster): the compute nodes and their states
 * (idle / busy / dead, and the device each trains on) and the rounds of each job, from the coordinator's events.jsonl lines.
 */
import type { EventRecord } from '../metrics/events.js';

export interface ClusterNode {
  id: string;
  state: 'idle' | 'busy' | 'dead';
  note: string | null;
  tasksDone: number;
  /** Where the node trains its tasks (node_device: "cpu" or "webgpu"); null until its first heartbeat. */
  device: string | null;
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
}

export class ClusterView {
  private readonly nodes = new Map<string, ClusterNode>();
  private readonly rounds: ClusterRound[] = [];
  private seen = false;

  /** Takes the cluster events among a run's events; others are ignored. */
  add(e: EventRecord): void {
    const id = typeof e.node === 'string' ? e.node : null;
    switch (e.kind) {
      case 'coordinator_started':
        this.seen = true;
        return;
      case 'node_joined':
        if (id) Object.assign(this.node(id), { state: 'idle', note: typeof e.how === 'string' ? e.how : null });
        return;
      case 'node_state':
        if (id && (e.state === 'idle' || e.state === 'busy')) this.node(id).state = e.state;
        return;
      case 'node_device':
        if (id && typeof e.device === 'string') this.node(id).device = e.device;
        return;
      case 'node_dead':
        if (id) Object.assign(this.node(id), { state: 'dead', note: typeof e.reason === 'string' ? e.reason : null });
        return;
      case 'node_unreachable':
        if (id) Object.assign(this.node(id), { note: typeof e.error === 'string' ? e.error : null });
        return;
      case 'task_done':
        if (id) this.node(id).tasksDone++;
        return;
      case 'round':
        this.rounds.push({ job: Number(e.job), round: Number(e.round), validationError: Number(e.validation_error), trainError: Number(e.train_error), ms: Number(e.ms) });
        return;
    }
  }

  status(): ClusterStatus | null {
    if (!this.seen) return null;
    return { nodes: [...this.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1)), rounds: this.rounds.slice(-200) };
  }

  private node(id: string): ClusterNode {
    let n = this.nodes.get(id);
    if (!n) this.nodes.set(id, (n = { id, state: 'dead', note: null, tasksDone: 0, device: null }));
    return n;
  }
}
