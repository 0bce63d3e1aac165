import os from 'node:os';
import { ADDRESS_KEY } from '../../comm/rendezvous.js';
import { backend } from '../../tensor/dispatch.js';

export interface AddressStore {
  get(key: string, timeoutMs?: number): Promise<Uint8Array>;
}

/**
 * How many ranks of the cluster share this rank's host (and so its cores): those whose data address,
 * as registered in the rendezvous store, names the same host as this rank's. Workers started by hand
 * each saw all the cores and chose threads alone (two on 2 cores chose 2 and 1).
 */
export async function ranksSharingHost(store: AddressStore, rank: number, size: number, timeoutMs: number): Promise<number> {
  const addresses = await Promise.all(Array.from({ length: size }, (_, r) => store.get(`${ADDRESS_KEY}${r}`, timeoutMs)));
  const hosts = addresses.map((a) => hostOf(new TextDecoder().decode(a)));
  return hosts.filter((h) => h === hosts[rank]).length;
}

/** "10.0.0.5:4000" → "10.0.0.5", "[::1]:4000" → "::1". */
function hostOf(address: string): string {
  const host = address.slice(0, address.lastIndexOf(':'));
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

/** The threads an automatically choosing rank keeps when `sharing` ranks divide `cores`: never more than its share. */
export function shareOfCores(chosen: number, sharing: number, cores: number): number {
  return Math.min(chosen, Math.max(1, Math.floor(cores / Math.max(1, sharing))));
}

/**
 * After the rendezvous, a rank that chose its threads alone keeps no more than its share of the
 * host's cores; returns the line that says so, or null when its choice already fits.
 */
export async function fitThreadsToHost(o: { store: AddressStore; rank: number; size: number; timeoutMs: number; cores?: number }): Promise<string | null> {
  const cores = o.cores ?? os.availableParallelism();
  const sharing = await ranksSharingHost(o.store, o.rank, o.size, o.timeoutMs);
  const chosen = backend().getThreads();
  const fair = shareOfCores(chosen, sharing, cores);
  if (fair === chosen) return null;
  backend().setThreads(fair);
  return `${sharing} ranks share this host's ${cores} core${cores === 1 ? '' : 's'}: ${fair} thread${fair === 1 ? '' : 's'} each, not the ${chosen} chosen alone`;
}
