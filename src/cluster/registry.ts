/**
 * The coordinator's roll of compute nodes. A node is known by "host:port" (its task port), whether it
 * registered itself or was listed in the nodes file, so a restarted node is the same node again; the
 * names of this machine's loopback (localhost, ::1, ::ffff:127.0.0.1) count as 127.0.0.1. It is
 * live while it has an open connection and its heartbeats are fresh; it turns dead when its last
 * connection closes or its heartbeats stop for `deadAfterMs`, and every change is reported (to the
 * scheduler, which re-queues the dead node's tasks, and to events.jsonl).
 */
import type { Connection } from '../comm/tcp/connection.js';
import type { NodeDevice } from './messages.js';
import type { NodeView } from './policies/policy.js';

export type NodeState = 'idle' | 'busy' | 'dead';

export interface NodeEntry {
  id: string;
  host: string;
  port: number;
  source: 'registered' | 'file';
  conns: Set<Connection>;
  state: NodeState;
  /** Task keys in flight on this node. */
  inFlight: Set<string>;
  lastHeartbeat: number;
  /** Durations of the last few finished tasks (ms). */
  recent: number[];
  /** What happened to it last, for messages ("missed heartbeats for 1500 ms", "connection refused"). */
  note: string;
  /** A dial of a listed node is under way (not re-dialed meanwhile). */
  dialing: boolean;
  /** Where the node trains (its heartbeats say; null until the first one). */
  device: NodeDevice | null;
}

export interface RegistryEvents {
  /** A node became live (first time or again). */
  joined(node: NodeEntry, how: string): void;
  /** A node died: its in-flight tasks are given back. */
  died(node: NodeEntry, reason: string, tasks: string[]): void;
  /** idle ↔ busy. */
  stateChanged(node: NodeEntry): void;
  /** The node's device became known, or changed (a node restarted with another --device). */
  deviceChanged?(node: NodeEntry): void;
}

const RECENT = 5;

export class NodeRegistry {
  private readonly nodes = new Map<string, NodeEntry>();

  constructor(
    private readonly deadAfterMs: number,
    private readonly events: RegistryEvents,
  ) {}

  get all(): NodeEntry[] {
    return [...this.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  get(id: string): NodeEntry | undefined {
    return this.nodes.get(id);
  }

  /** A node listed in the nodes file (known, dead until a dial succeeds). */
  ensureListed(host: string, port: number): NodeEntry {
    return this.entry(host, port, 'file');
  }

  /** An authenticated connection to or from the node: it is live from now on. */
  attach(host: string, port: number, conn: Connection, how: string, source: NodeEntry['source']): NodeEntry {
    const node = this.entry(host, port, source);
    node.conns.add(conn);
    node.lastHeartbeat = Date.now();
    conn.on('closed', (err: Error | null) => {
      node.conns.delete(conn);
      if (node.conns.size === 0 && node.state !== 'dead') this.kill(node, err ? `connection lost (${err.message})` : 'connection closed');
    });
    if (node.state === 'dead') {
      node.state = 'idle';
      node.note = how;
      this.events.joined(node, how);
      this.refreshState(node);
    }
    return node;
  }

  heartbeat(node: NodeEntry, device?: NodeDevice): void {
    node.lastHeartbeat = Date.now();
    if (device === undefined || device === node.device) return;
    node.device = device;
    this.events.deviceChanged?.(node);
  }

  /** Marks nodes whose heartbeats stopped as dead (and closes their connections). */
  checkHeartbeats(now = Date.now()): void {
    for (const node of this.nodes.values()) {
      if (node.state !== 'dead' && now - node.lastHeartbeat > this.deadAfterMs) {
        this.kill(node, `missed heartbeats for ${now - node.lastHeartbeat} ms (limit ${this.deadAfterMs} ms)`);
      }
    }
  }

  kill(node: NodeEntry, reason: string): void {
    if (node.state === 'dead') return;
    node.state = 'dead';
    node.note = reason;
    const tasks = [...node.inFlight];
    node.inFlight.clear();
    for (const c of [...node.conns]) c.destroy();
    node.conns.clear();
    this.events.died(node, reason, tasks);
  }

  /** Live nodes with fewer than `slots` tasks in flight, as the policies see them (sorted by id). */
  candidates(slots: number, exclude: ReadonlySet<string> = new Set()): NodeView[] {
    const out: NodeView[] = [];
    for (const n of this.all) {
      if (n.state === 'dead' || n.inFlight.size >= slots || exclude.has(n.id) || !this.connection(n)) continue;
      out.push({ id: n.id, inFlight: n.inFlight.size, recentMs: n.recent.length ? n.recent.reduce((a, b) => a + b, 0) / n.recent.length : null });
    }
    return out;
  }

  get liveCount(): number {
    return this.all.filter((n) => n.state !== 'dead').length;
  }

  /** The connection to send a task on: the newest open one. */
  connection(node: NodeEntry): Connection | null {
    let last: Connection | null = null;
    for (const c of node.conns) if (c.isOpen) last = c;
    return last;
  }

  started(node: NodeEntry, key: string): void {
    node.inFlight.add(key);
    this.refreshState(node);
  }

  /** A task left the node (done or rejected); `ms` is its duration when it ran. */
  ended(node: NodeEntry, key: string, ms: number | null): boolean {
    const had = node.inFlight.delete(key);
    if (ms !== null) {
      node.recent.push(ms);
      if (node.recent.length > RECENT) node.recent.shift();
    }
    this.refreshState(node);
    return had;
  }

  /** One line per node for a failure message: "127.0.0.1:9091 dead (connection refused)". */
  describe(): string {
    if (this.nodes.size === 0) return 'no compute node ever registered or was listed';
    return this.all.map((n) => `${n.id} ${n.state}${n.note ? ` (${n.note})` : ''}`).join('; ');
  }

  private refreshState(node: NodeEntry): void {
    if (node.state === 'dead') return;
    const next: NodeState = node.inFlight.size > 0 ? 'busy' : 'idle';
    if (next !== node.state) {
      node.state = next;
      this.events.stateChanged(node);
    }
  }

  private entry(host: string, port: number, source: NodeEntry['source']): NodeEntry {
    const id = `${canonicalHost(host)}:${port}`;
    let node = this.nodes.get(id);
    if (!node) {
      node = { id, host, port, source, conns: new Set(), state: 'dead', inFlight: new Set(), lastHeartbeat: 0, recent: [], note: 'not connected yet', dialing: false, device: null };
      this.nodes.set(id, node);
    }
    return node;
  }
}

/**
 * One spelling per address, so a node listed as localhost that registers from 127.0.0.1 is one node:
 * localhost and ::1 are 127.0.0.1, IPv4-mapped IPv6 addresses are their IPv4 address, case and
 * brackets do not count. (Other names are not resolved: list nodes by the address they connect from.)
 */
export function canonicalHost(host: string): string {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
  return h === 'localhost' || h === '::1' ? '127.0.0.1' : h;
}
