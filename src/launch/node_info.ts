/**
 * What this node brings to a cluster (`smolcluster info`, and each worker's `worker_joined`): its
 * cores and memory, the kernel libraries the tensor backend uses, its network interfaces with their
 * kind and addresses, and the GPUs the system reports (by name; training is CPU-only for now).
 * GPUs are asked of the system: NVIDIA's driver (/proc/driver/nvidia/gpus/<bus>/information), `lspci`
 * (display controllers), or macOS `system_profiler SPDisplaysDataType -json`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { detectBf16Instructions } from '../train/engine/precision_auto.js';
import type { CpuTable } from '../tensor/backends/native.js';
import { snakeCaseKeys } from '../util/snake_case.js';
import { classifyInterface, type LinkKind } from './iface.js';

export interface InterfaceInfo {
  name: string;
  kind: LinkKind | 'loopback';
  addresses: string[];
}

export interface NodeInfo {
  host: string;
  platform: string;
  arch: string;
  cpu: string;
  cores: number;
  /** Cores this process may run on (affinity, cgroup). */
  availableCores: number;
  memoryGiB: number;
  /** The tensor backend and the kernel libraries it was built with. */
  backend: string;
  /** The native addon that serves it: which file, prebuilt or built from source, and its oneDNN; null when not loaded. */
  addon: AddonFacts | null;
  interfaces: InterfaceInfo[];
  gpus: string[];
  /** Where the GPU names came from, or why none could be asked. */
  gpuSource: string;
  /** The CPU's bf16 matrix or dot-product instructions (what --precision auto looks for; docs/PRECISION.md), and where they were read. */
  bf16: string[];
  bf16Source: string;
}

/** Where the native addon was loaded from (src/tensor/backends/native.ts decides; the caller passes it). */
export interface AddonFacts {
  path: string;
  /** 'prebuilt' (prebuilds/<platform>-<arch>, shipped in the package), 'built from source' or 'SMOLCLUSTER_NATIVE_ADDON'. */
  origin: string;
  /** The libdnnl file the loader mapped (the bundled copy beside a prebuilt addon), or null. */
  dnnlLibrary: string | null;
  /** The addon's CPU feature table: the level its kernels run at, under any SMOLCLUSTER_CPU cap. */
  cpu?: CpuTable;
}

export const NODE_INFO_SCHEMA = 'smolcluster-node-info';
export const NODE_INFO_SCHEMA_VERSION = 1;

/** `info --json`: the facts under snake_case keys, named and versioned like every file smolcluster writes (docs/RESULT.md). */
export function nodeInfoFile(n: NodeInfo): Record<string, unknown> {
  return { schema: NODE_INFO_SCHEMA, schema_version: NODE_INFO_SCHEMA_VERSION, ...(snakeCaseKeys(n) as object) };
}

/** This node's facts; `backend` is the tensor backend's description and `addon` its file (the caller knows them). */
export function nodeInfo(backend: string, addon: AddonFacts | null = null): NodeInfo {
  const gpus = detectGpus();
  const bf16 = detectBf16Instructions({ cpu: addon?.cpu ?? null });
  return {
    host: os.hostname(),
    platform: os.platform(),
    arch: os.arch(),
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.cpus().length,
    availableCores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    backend,
    addon,
    interfaces: interfacesOf(os.networkInterfaces()),
    gpus: gpus.names,
    gpuSource: gpus.source,
    bf16: bf16.found,
    bf16Source: bf16.source,
  };
}

export function interfacesOf(all: NodeJS.Dict<os.NetworkInterfaceInfo[]>, platform: NodeJS.Platform = process.platform): InterfaceInfo[] {
  return Object.entries(all).map(([name, infos]) => ({
    name,
    kind: (infos ?? []).some((i) => i.internal) ? 'loopback' as const : classifyInterface(name, platform),
    addresses: (infos ?? []).map((i) => i.cidr ?? i.address),
  }));
}

function detectGpus(): { names: string[]; source: string } {
  const nvidia = '/proc/driver/nvidia/gpus';
  if (existsSync(nvidia)) {
    const names = readdirSync(nvidia).map((d) => parseNvidiaInformation(safeRead(join(nvidia, d, 'information')))).filter((n): n is string => n !== null);
    if (names.length > 0) return { names, source: '/proc/driver/nvidia' };
  }
  if (process.platform === 'darwin') {
    const r = spawnSync('system_profiler', ['SPDisplaysDataType', '-json'], { encoding: 'utf8', timeout: 10_000 });
    return r.status === 0 ? { names: parseSystemProfilerDisplays(r.stdout), source: 'system_profiler' } : { names: [], source: 'system_profiler failed' };
  }
  const r = spawnSync('lspci', [], { encoding: 'utf8', timeout: 5000 });
  if (r.error || r.status !== 0) return { names: [], source: 'lspci unavailable' };
  return { names: parseLspci(r.stdout), source: 'lspci' };
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The "Model:" line of /proc/driver/nvidia/gpus/<bus>/information. */
export function parseNvidiaInformation(text: string): string | null {
  const m = /^Model:\s*(.+?)\s*$/m.exec(text);
  return m ? m[1] : null;
}

/** Display controllers in `lspci` output: "01:00.0 VGA compatible controller: NVIDIA … [GeForce RTX 3060]" → the device text. */
export function parseLspci(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\S+\s+(?:VGA compatible controller|3D controller|Display controller)(?: \[[0-9a-f]{4}\])?:\s*(.+?)\s*$/i.exec(line);
    if (m) out.push(m[1]);
  }
  return out;
}

/** `system_profiler SPDisplaysDataType -json` → each display adapter's model ("Apple M2 Pro"). */
export function parseSystemProfilerDisplays(json: string): string[] {
  try {
    const items = (JSON.parse(json) as { SPDisplaysDataType?: Array<Record<string, unknown>> }).SPDisplaysDataType ?? [];
    return items.map((g) => String(g.sppci_model ?? g._name ?? '')).filter(Boolean);
  } catch {
    return [];
  }
}

/** The text `smolcluster info` prints. */
export function formatNodeInfo(n: NodeInfo): string {
  const lines = [
    `host       ${n.host} (${n.platform} ${n.arch})`,
    `cpu        ${n.cpu}: ${n.cores} cores${n.availableCores !== n.cores ? ` (${n.availableCores} available to this process)` : ''}`,
    `memory     ${n.memoryGiB} GiB`,
    `kernels    ${n.backend}`,
    `addon      ${formatAddon(n.addon)}`,
    ...(n.addon?.cpu ? [`cpu level  ${formatCpuLevel(n.addon.cpu)}`] : []),
    `bf16       ${n.bf16.length > 0 ? n.bf16.join(', ') : 'no bf16 instructions'} (${n.bf16Source}; --precision auto measures whether they pay)`,
    `gpus       ${n.gpus.length > 0 ? n.gpus.join('; ') : 'none seen'} (${n.gpuSource}; training runs on the CPU)`,
    'interfaces',
    ...n.interfaces.map((i) => `  ${i.name.padEnd(12)} ${i.kind.padEnd(11)} ${i.addresses.join(', ')}`),
  ];
  return lines.join('\n');
}

/** "avx2 (capped by SMOLCLUSTER_CPU; the CPU reaches amx): avx2" — the level, then the features the kernels may use. */
export function formatCpuLevel(c: CpuTable): string {
  const capped = c.level !== c.detectedLevel ? ` (capped by SMOLCLUSTER_CPU; the CPU reaches ${c.detectedLevel})` : '';
  const features = Object.entries(c.features).filter(([, on]) => on).map(([f]) => f);
  return `${c.level}${capped}: ${features.join(' ') || 'no SIMD extensions'}; levels ${c.levels.join(' < ')}`;
}

function formatAddon(a: AddonFacts | null): string {
  if (a === null) return 'none loaded';
  return `${a.path} (${a.origin}${a.dnnlLibrary ? `; oneDNN from ${a.dnnlLibrary}` : ''})`;
}

/** The part of a node's facts a worker reports at join (events.jsonl `worker_joined.node`). */
export function joinSummary(n: NodeInfo): { cores: number; memory_gib: number; cpu: string; gpus: string[]; interfaces: string[] } {
  return {
    cores: n.availableCores, memory_gib: n.memoryGiB, cpu: n.cpu, gpus: n.gpus,
    interfaces: n.interfaces.filter((i) => i.kind !== 'loopback').map((i) => `${i.name} (${i.kind}) ${i.addresses.filter((a) => !a.includes(':')).join(', ')}`.trim()),
  };
}
