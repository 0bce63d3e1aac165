import { Command } from 'commander';
import { browseClusters } from '../launch/discovery/mdns.js';
import { discoverFile, formatClusters } from '../launch/discovery/listing.js';
import { matchingClusters } from '../launch/discovery/choose.js';
import { checkClusterName } from '../launch/discovery/record.js';
import { chooseInterface } from '../launch/iface.js';
import { positiveNumber } from './options.js';

interface DiscoverCommandFlags {
  timeout: number;
  clusterName?: string;
  iface?: string;
  json?: boolean;
}

/** `smolcluster discover [--json]`: the clusters whose masters advertise on the local network. */
export function discoverCommand(): Command {
  return new Command('discover')
    .description('list the clusters on the local network whose masters advertise (DNS-SD _smolcluster._tcp, started with --advertise)')
    .option('--timeout <seconds>', 'how long to listen', positiveNumber, 3)
    .option('--cluster-name <name>', 'list only this cluster')
    .option('--iface <name>', 'the interface (or its address) to listen on (default: the system\'s multicast route)')
    .option('--json', 'one JSON object ("schema": "smolcluster-discover") instead of a table')
    .action(async (flags: DiscoverCommandFlags) => {
      const name = flags.clusterName !== undefined ? checkClusterName(flags.clusterName) : undefined;
      const interfaceAddress = chooseInterface({ requested: flags.iface, masterHost: '127.0.0.1' })?.address;
      const result = await browseClusters({ timeoutMs: flags.timeout * 1000, interfaceAddress, warn: (line) => process.stderr.write(`smolcluster: warning: ${line}\n`) });
      const shown = { ...result, found: matchingClusters(result.found, name) };
      process.stdout.write(`${flags.json ? JSON.stringify(discoverFile(shown), null, 2) : formatClusters(shown)}\n`);
    });
}
