/**
 * Which compute nodes a coordinator expects, as the original system did: `compute_nodes.txt` in the
 * working folder is read when --nodes names no other file (the original's recipe, `compute-node
 * 9091 0.2` then `coordinator 9095 2`, relies on it). Said at start, and while no node is live, why.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { type NodeAddress, readNodesFile } from '../cluster/nodes_file.js';

export const NODES_FILE = 'compute_nodes.txt';

/** --nodes, else compute_nodes.txt when the working folder has one, else none. */
export function nodesFileFor(flag: string | undefined, cwd = process.cwd()): { file: string | undefined; found: boolean } {
  if (flag !== undefined) return { file: flag, found: false };
  return existsSync(resolve(cwd, NODES_FILE)) ? { file: NODES_FILE, found: true } : { file: undefined, found: false };
}

/** The start-up line: the nodes the coordinator will dial, or how nodes can reach it. */
export function expectedNodesLine(file: string | undefined, found: boolean, port: number, cwd = process.cwd()): string {
  if (file === undefined) {
    return `no ${NODES_FILE} in ${cwd} and no --nodes: waiting for compute nodes to register (compute-node PORT --coordinator HOST:${port})`;
  }
  const nodes = readNodesFile(file);
  const from = found ? `${NODES_FILE} (found in the working folder)` : file;
  return nodes.length === 0 ? `${from} lists no node yet (it is re-read every second); nodes may also register with --coordinator HOST:${port}`
    : `expecting ${nodes.length} compute node${nodes.length === 1 ? '' : 's'} from ${from}: ${list(nodes)}`;
}

/** Why no node is live yet, for a line repeated while that lasts. */
export function noNodeLine(file: string | undefined, port: number, waitedMs: number): string {
  const waited = `no compute node has joined after ${Math.round(waitedMs / 1000)} s`;
  if (file === undefined) return `${waited}: none is listed (no ${NODES_FILE} here, no --nodes) and none registered; start one with compute-node PORT --coordinator HOST:${port}, or list it in ${NODES_FILE}`;
  let nodes: NodeAddress[];
  try {
    nodes = readNodesFile(file);
  } catch (e) {
    return `${waited}: ${(e as Error).message}`;
  }
  if (nodes.length === 0) return `${waited}: ${file} lists none and none registered`;
  return `${waited}: dialing ${list(nodes)} from ${file} without an answer (is compute-node running on each, with the same SMOLCLUSTER_TOKEN?)`;
}

function list(nodes: readonly NodeAddress[]): string {
  const shown = nodes.slice(0, 8).map((n) => `${n.host}:${n.port}`).join(', ');
  return nodes.length > 8 ? `${shown}, ... (${nodes.length})` : shown;
}
