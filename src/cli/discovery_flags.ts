/**
 * The flags of zero-config join (docs/LAUNCH.md "Zero-config join"), declared once for the commands
 * that take them: the master's (`worker`, `server`, `store`: --advertise, --cluster-name) and the
 * joining worker's (--discover, --cluster-name, --discover-timeout).
 */
import type { Command } from 'commander';
import { DISCOVER_TIMEOUT_S } from '../launch/discovery/join.js';
import { positiveNumber } from './options.js';

const CLUSTER_NAME_HELP = 'the cluster\'s name on the LAN (DNS-SD; default: the master\'s host name); with --discover, the cluster to join';

/** --advertise and --cluster-name, for a process hosting the rendezvous store. */
export function addAdvertiseFlags(cmd: Command): Command {
  return cmd
    .option('--advertise', 'announce the rendezvous store on the local network as _smolcluster._tcp (DNS-SD: cluster name, protocol, world size, model; never the token) so workers can join with --discover; the store must listen beyond loopback')
    .option('--cluster-name <name>', CLUSTER_NAME_HELP);
}

/** --discover and --discover-timeout (--cluster-name comes with addAdvertiseFlags). */
export function addDiscoverFlags(cmd: Command): Command {
  return cmd
    .option('--discover', 'find the master on the local network by DNS-SD (a master started with --advertise) and take a rank from its store, instead of --master and --rank; the cluster token is still needed')
    .option('--discover-timeout <seconds>', `how long --discover looks for the master (default: ${DISCOVER_TIMEOUT_S})`, positiveNumber);
}
