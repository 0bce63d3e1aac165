/**
 * A master's side of zero-config join: with --advertise, the process hosting the rendezvous store
 * (`worker --rank 0`, `server`, `store`) announces it on the local link as `_smolcluster._tcp`.
 * Only when asked: a master never multicasts by itself, and a store on loopback, which no other
 * machine can reach, is not advertised at all (the flag is refused, naming the one to change).
 */
import os from 'node:os';
import { isIP } from 'node:net';
import { PROTOCOL_VERSION } from '../../comm/wire/frame.js';
import { ConfigError } from '../../util/errors.js';
import { isLoopbackHost } from '../iface.js';
import { type Advertisement, advertiseCluster } from './mdns.js';
import { SERVICE_TYPE, checkClusterName } from './record.js';

/** What the flags say about advertising: whether to, and under which cluster name. */
export interface AdvertiseFlags {
  advertise?: boolean;
  clusterName?: string;
}

/** --cluster-name and --discover-timeout mean nothing without --advertise or --discover: refused, not ignored. */
export function checkDiscoveryFlags(flags: AdvertiseFlags & { discover?: boolean; discoverTimeout?: number }): void {
  if (flags.discoverTimeout !== undefined && !flags.discover) throw new ConfigError('command line', '--discover-timeout', 'is how long --discover looks for the master; pass --discover too');
  if (flags.clusterName !== undefined && !flags.advertise && !flags.discover) {
    throw new ConfigError('command line', '--cluster-name', 'names the cluster on the LAN: give it with --advertise (on the master) or --discover (on a worker)');
  }
}

/** The cluster name: --cluster-name, else this host's short name (made a valid name). */
export function clusterNameOf(flags: { clusterName?: string }, hostname = os.hostname()): string {
  if (flags.clusterName !== undefined) return checkClusterName(flags.clusterName);
  const short = hostname.split('.')[0].replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63);
  return short || 'smolcluster';
}

export interface StoreAdvert {
  flags: AdvertiseFlags;
  /** Where the store listens, and how to move it onto the LAN (for the refusal on loopback). */
  listenHost: string;
  port: number;
  listenHint: string;
  worldSize: number;
  model: string;
  strategy: string;
}

/** Starts advertising the store (null when --advertise is not given); refuses a store on loopback. */
export async function advertiseStore(s: StoreAdvert, say: (line: string) => void): Promise<Advertisement | null> {
  if (!s.flags.advertise) return null;
  if (isLoopbackHost(s.listenHost)) {
    throw new ConfigError('command line', '--advertise', `the rendezvous store listens on ${s.listenHost}:${s.port}, which other machines cannot reach; ` +
      `listen on the LAN (${s.listenHint}) to advertise it`);
  }
  const clusterName = clusterNameOf(s.flags);
  const wildcard = s.listenHost === '0.0.0.0' || s.listenHost === '::';
  // A store on one address: say which, and multicast on that interface only.
  const one = !wildcard && isIP(s.listenHost) === 4 ? s.listenHost : undefined;
  const ad = await advertiseCluster(
    { clusterName, protocolVersion: PROTOCOL_VERSION, worldSize: s.worldSize, model: s.model, strategy: s.strategy, ...(one ? { address: one } : {}) },
    s.port, { interfaceAddress: one }, (line) => say(`warning: ${line}`),
  );
  say(`advertising cluster "${clusterName}" as ${SERVICE_TYPE} on the local network (DNS-SD instance "${ad.instance}"; no token in it); ` +
    `other hosts join with: smolcluster worker --discover --cluster-name ${clusterName} and the run's training flags`);
  return ad;
}
