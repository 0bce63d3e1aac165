/**
 * Which found cluster a `worker --discover` joins: the one with the asked name (or the only one on
 * the LAN when no name is asked). Two of one name, or several with no name asked, are an error that
 * lists them; so is a master speaking another wire protocol.
 */
import { ConfigError } from '../../util/errors.js';
import { type FoundCluster, SERVICE_TYPE, describeCluster } from './record.js';

/** The clusters with the asked name (all of them with none), one per DNS-SD instance. */
export function matchingClusters(found: readonly FoundCluster[], clusterName?: string): FoundCluster[] {
  const seen = new Set<string>();
  return found.filter((c) => {
    if (clusterName !== undefined && c.clusterName !== clusterName) return false;
    if (seen.has(c.instance)) return false;
    seen.add(c.instance);
    return true;
  });
}

/**
 * The cluster to join among those found (null: none matches yet). Throws a ConfigError naming
 * --cluster-name when the choice is ambiguous, --discover when the master cannot be joined.
 */
export function chooseCluster(found: readonly FoundCluster[], o: { clusterName?: string; protocolVersion: number }): FoundCluster | null {
  const matches = matchingClusters(found, o.clusterName);
  if (matches.length === 0) return null;
  if (matches.length > 1) {
    const list = matches.map((c) => `  ${describeCluster(c)} [${c.instance}]`).join('\n');
    const why = o.clusterName !== undefined
      ? `${matches.length} masters advertise the cluster name "${o.clusterName}" (${SERVICE_TYPE}):\n${list}\ngive each cluster its own --cluster-name on its master`
      : `${matches.length} clusters advertise ${SERVICE_TYPE} on this network:\n${list}\npass --cluster-name NAME to pick one`;
    throw new ConfigError('command line', '--cluster-name', why);
  }
  const c = matches[0];
  if (c.protocolVersion !== o.protocolVersion) {
    throw new ConfigError('command line', '--discover', `${describeCluster(c)} speaks wire protocol ${c.protocolVersion}, this smolcluster speaks ${o.protocolVersion}: run the same smolcluster version on every host`);
  }
  return c;
}

/** The error of a discovery that found nothing to join before its deadline. */
export function notFoundError(o: { clusterName?: string; waitedMs: number; others: readonly FoundCluster[]; unreadable: number }): ConfigError {
  const what = o.clusterName !== undefined ? `no master of cluster "${o.clusterName}"` : 'no cluster master';
  const others = o.others.length > 0 ? `; found instead: ${o.others.map(describeCluster).join('; ')}` : '';
  const unreadable = o.unreadable > 0 ? `; ${o.unreadable} advert${o.unreadable === 1 ? '' : 's'} could not be read (smolcluster discover lists them)` : '';
  return new ConfigError('command line', '--discover',
    `${what} answered DNS-SD (${SERVICE_TYPE}) within ${(o.waitedMs / 1000).toFixed(1)} s${others}${unreadable}. ` +
    'Is the master started with --advertise, on this network (multicast reaches only the local link), and not blocked by a firewall on UDP 5353? ' +
    'Or pass --master host:port instead');
}
