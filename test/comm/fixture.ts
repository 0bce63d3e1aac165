/**
 * Shared fixtures: the same collective tests run over every transport (in-process and real TCP on
 * 127.0.0.1; shared memory over TCP where the addon has it), like one conformance suite per backend.
 */
import { createInProcessTransports } from '../../src/comm/inproc.js';
import { setCommLogger, type LogLevel } from '../../src/comm/log.js';
import { ProcessGroup, type ProcessGroupOptions } from '../../src/comm/process_group.js';
import { shmNative } from '../../src/launch/shm_native.js';
import { shareMemory } from '../../src/comm/shm/negotiate.js';
import { MeshListener } from '../../src/comm/tcp/mesh.js';
import type { TcpTransport } from '../../src/comm/tcp/transport.js';
import type { Transport } from '../../src/comm/transport.js';

export type Backend = 'inproc' | 'tcp' | 'shm';
export const BACKENDS: Backend[] = ['inproc', 'tcp'];
/** Every transport this machine has: shared memory too where the native addon provides it (Linux). */
export const ALL_BACKENDS: Backend[] = shmNative() ? ['inproc', 'tcp', 'shm'] : ['inproc', 'tcp'];
export const TOKEN = 'test-token-0123456789abcdef';

/** Collects comm log lines instead of printing them. */
export const logLines: Array<{ level: LogLevel; message: string }> = [];
setCommLogger((level, message) => {
  logLines.push({ level, message });
});

export interface World {
  groups: ProcessGroup[];
  transports: Transport[];
  close(): Promise<void>;
}

export async function makeTcpTransports(n: number, opts: { timeoutMs?: number; signature?: string } = {}): Promise<Transport[]> {
  const listeners: MeshListener[] = [];
  for (let r = 0; r < n; r++) {
    listeners.push(await MeshListener.open({ rank: r, size: n, token: TOKEN, signature: opts.signature ?? 'sig', timeoutMs: 10_000, opTimeoutMs: opts.timeoutMs }, '127.0.0.1', 0));
  }
  const addresses = listeners.map((l) => `127.0.0.1:${l.port}`);
  return Promise.all(listeners.map((l) => l.connect(addresses)));
}

async function makeTransports(backend: Backend, n: number, timeoutMs?: number): Promise<Transport[]> {
  if (backend === 'inproc') return createInProcessTransports(n, { timeoutMs });
  const tcp = await makeTcpTransports(n, { timeoutMs });
  if (backend === 'tcp') return tcp;
  // Small rings, so messages larger than a ring are tested too.
  return Promise.all(tcp.map((t) => shareMemory(t as TcpTransport, { timeoutMs: timeoutMs ?? 10_000, ringBytes: 1 << 16, native: shmNative() })));
}

export async function makeWorld(backend: Backend, n: number, opts: ProcessGroupOptions = {}): Promise<World> {
  const transports = await makeTransports(backend, n, opts.timeoutMs);
  const groups = transports.map((t) => new ProcessGroup(t, opts));
  return { groups, transports, close: async () => void (await Promise.all(transports.map((t) => t.close()))) };
}

/** Runs fn on every rank concurrently. */
export function onAll<T>(world: World, fn: (pg: ProcessGroup, rank: number) => Promise<T>): Promise<T[]> {
  return Promise.all(world.groups.map((pg, r) => fn(pg, r)));
}

/** Deterministic test data: small integers (sums are exact) or arbitrary floats. */
export function rankData(rank: number, length: number, kind: 'int' | 'float' = 'int'): Float32Array {
  const out = new Float32Array(length);
  let x = (rank + 1) * 2654435761;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = kind === 'int' ? (x % 201) - 100 : (x / 4294967296 - 0.5) * 10 ** ((x % 7) - 3);
  }
  return out;
}

export function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}
