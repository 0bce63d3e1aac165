import { isLoopbackHost } from './iface.js';

/**
 * One rule for every listener (docs/LAUNCH.md "Listen addresses"): it binds 127.0.0.1 unless told
 * otherwise (--host, --bind-host, --dashboard-host, cluster_config host_ip), or unless the peer it
 * serves is on another machine (a compute node of a remote coordinator, the data links of a cluster
 * whose master is remote), which cannot reach loopback. Binding beyond loopback prints a warning.
 */
export const LOOPBACK = '127.0.0.1';

/** The default listen address of a process whose peer is `peerHost` (none: only this machine's). */
export function defaultListenHost(peerHost?: string): string {
  return peerHost === undefined || isLoopbackHost(peerHost) ? LOOPBACK : '0.0.0.0';
}

/** The warning for `what` listening on `host` (null on loopback): who can reach it, and what keeps strangers out. */
export function listenWarning(what: string, host: string, port: number, flag = '--host'): string | null {
  if (isLoopbackHost(host)) return null;
  const where = host === '0.0.0.0' || host === '::' ? `every interface of this machine (${host}:${port})` : `${host}:${port}`;
  return `warning: the ${what} listens on ${where}: anyone who can reach it can connect, and only the cluster token ` +
    `(SMOLCLUSTER_TOKEN) keeps strangers out; use it on a network you trust, or ${flag} ${LOOPBACK} to keep it on this machine`;
}
