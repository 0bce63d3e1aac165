/**
 * What `smolcluster discover` prints: a table of the clusters that answered, or (--json) one
 * object, `"schema": "smolcluster-discover"`, `schema_version` 1, snake_case keys. How many workers
 * have joined is not in it: the store says that only to clients holding the token, and the
 * advertisement carries nothing a stranger could not be told.
 */
import type { BrowseResult } from './mdns.js';
import { type FoundCluster, SERVICE_TYPE } from './record.js';

export const DISCOVER_SCHEMA = 'smolcluster-discover';
export const DISCOVER_SCHEMA_VERSION = 1;

/** The --json object. */
export function discoverFile(r: BrowseResult): Record<string, unknown> {
  return {
    schema: DISCOVER_SCHEMA,
    schema_version: DISCOVER_SCHEMA_VERSION,
    service: SERVICE_TYPE,
    listened_s: Math.round(r.waitedMs / 100) / 10,
    clusters: sorted(r.found).map((c) => ({
      cluster_name: c.clusterName, host: c.host, port: c.port, world_size: c.worldSize, model: c.model, strategy: c.strategy,
      protocol_version: c.protocolVersion, instance: c.instance,
    })),
    unreadable: r.unreadable.map((u) => ({ instance: u.instance, from: u.from, problem: u.problem })),
  };
}

/** The table, with a line per advert that could not be read. */
export function formatClusters(r: BrowseResult): string {
  const listened = `${(r.waitedMs / 1000).toFixed(1)} s`;
  const lines: string[] = [];
  if (r.found.length === 0) {
    lines.push(`no cluster answered ${SERVICE_TYPE} on the local network in ${listened} (masters advertise with --advertise; multicast reaches only this link)`);
  } else {
    const rows = [['NAME', 'ADDRESS', 'PROCESSES', 'MODEL', 'STRATEGY', 'PROTOCOL'],
      ...sorted(r.found).map((c) => [c.clusterName, `${c.host}:${c.port}`, String(c.worldSize), c.model, c.strategy, String(c.protocolVersion)])];
    const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
    lines.push(`${r.found.length} cluster${r.found.length === 1 ? '' : 's'} on the local network (${SERVICE_TYPE}, listened ${listened}):`);
    for (const row of rows) lines.push(`  ${row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()}`);
    lines.push('join one with: smolcluster worker --discover --cluster-name NAME and the run\'s training flags (SMOLCLUSTER_TOKEN set)');
  }
  for (const u of r.unreadable) lines.push(`unreadable advert "${u.instance}" from ${u.from}: ${u.problem}`);
  return lines.join('\n');
}

function sorted(found: readonly FoundCluster[]): FoundCluster[] {
  return [...found].sort((a, b) => a.clusterName.localeCompare(b.clusterName) || a.host.localeCompare(b.host) || a.port - b.port);
}
