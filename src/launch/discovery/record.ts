/**
 * What a cluster's master says about itself on the LAN (DNS-SD, RFC 6763): the service type
 * `_smolcluster._tcp`, an instance name, and a TXT record with the cluster's name, the wire
 * protocol version, the world size, the model and the strategy. Never the cluster token: discovery
 * gives an address, and the store still authenticates everyone who dials it.
 *
 * TXT keys (short, as RFC 6763 §6.4 asks):
 *   txtvers   this record's layout (1)
 *   cluster   the cluster's name (--cluster-name)
 *   proto     the wire protocol version (comm/wire/frame.ts PROTOCOL_VERSION)
 *   world     the world size (processes, a ps server included)
 *   model     the model's name (--model)
 *   strategy  allreduce | ps | async-ps | ...
 *   addr      the address the store listens on, when it is one address rather than every interface
 */
import { isIP } from 'node:net';
import { ConfigError } from '../../util/errors.js';

/** DNS-SD service type, without the `_` and protocol (bonjour-service adds `_smolcluster._tcp`). */
export const SERVICE_NAME = 'smolcluster';
export const SERVICE_TYPE = '_smolcluster._tcp';
export const TXT_VERSION = 1;

/** What a master advertises. */
export interface ClusterAdvert {
  clusterName: string;
  protocolVersion: number;
  worldSize: number;
  model: string;
  strategy: string;
  /** The store's listen address when it is a single address (not a wildcard). */
  address?: string;
}

/** An advert as found on the LAN: what it says, and where the store is. */
export interface FoundCluster extends ClusterAdvert {
  /** The DNS-SD instance name. */
  instance: string;
  host: string;
  port: number;
}

/** A service of our type whose record could not be read (another version, a damaged record). */
export interface UnreadableAdvert {
  instance: string;
  from: string;
  problem: string;
}

/** What a browser hands over for one service: its name, port, TXT pairs and the addresses it came with. */
export interface RawService {
  name: string;
  port: number;
  txt: Record<string, unknown>;
  /** A records of the answer. */
  addresses: string[];
  /** Where the answer came from (reachable from here: link-local multicast is never routed). */
  referer?: string;
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** The cluster name, or a ConfigError naming `flag` (1–63 letters, digits, '.', '_', '-'). */
export function checkClusterName(name: string, flag = '--cluster-name'): string {
  if (!NAME_PATTERN.test(name)) {
    throw new ConfigError('command line', flag, `"${name}" is not a cluster name: 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  return name;
}

/** The TXT pairs of an advert. */
export function advertTxt(a: ClusterAdvert): Record<string, string> {
  const txt: Record<string, string> = {
    txtvers: String(TXT_VERSION),
    cluster: checkClusterName(a.clusterName),
    proto: String(a.protocolVersion),
    world: String(a.worldSize),
    model: a.model,
    strategy: a.strategy,
  };
  if (a.address !== undefined) txt.addr = a.address;
  return txt;
}

/**
 * The DNS-SD instance name: unique on the LAN (two masters of one cluster name on one host differ
 * by process id), readable in a Bonjour browser.
 */
export function instanceName(clusterName: string, hostname: string, pid: number): string {
  // bonjour-service turns dots into dashes; a host's short name reads better anyway.
  return `${clusterName} on ${hostname.split('.')[0]} (${pid})`;
}

/** A found service read as a cluster, or why it cannot be. */
export function readAdvert(s: RawService): FoundCluster | UnreadableAdvert {
  const from = `${s.referer ?? s.addresses[0] ?? '?'}:${s.port}`;
  // Anyone on the link can answer: nothing read from a record reaches a terminal unchecked.
  const instance = printable(s.name);
  const bad = (problem: string): UnreadableAdvert => ({ instance, from, problem });
  const text = (key: string): string | undefined => {
    const v = s.txt[key];
    if (typeof v === 'string') return v;
    if (Buffer.isBuffer(v)) return v.toString('utf8');
    return undefined;
  };
  const version = Number(text('txtvers'));
  if (version !== TXT_VERSION) return bad(`TXT layout ${text('txtvers') ?? '(none)'}, this smolcluster reads ${TXT_VERSION}`);
  const cluster = text('cluster');
  if (cluster === undefined || !NAME_PATTERN.test(cluster)) return bad(`no valid cluster name in its TXT record (cluster=${cluster ?? ''})`);
  const proto = intOf(text('proto'));
  const world = intOf(text('world'));
  if (proto === undefined) return bad(`cluster ${cluster}: no protocol version (proto=${text('proto') ?? ''})`);
  if (world === undefined || world < 1) return bad(`cluster ${cluster}: no world size (world=${text('world') ?? ''})`);
  if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) return bad(`cluster ${cluster}: port ${s.port}`);
  const address = text('addr');
  if (address !== undefined && isIP(address) !== 4) return bad(`cluster ${cluster}: addr=${printable(address)} is not an IPv4 address`);
  const host = address ?? s.referer ?? s.addresses.find((a) => isIP(a) === 4);
  if (host === undefined) return bad(`cluster ${cluster}: no address`);
  const word = (key: string): string | UnreadableAdvert => {
    const v = text(key);
    if (v === undefined) return '?';
    return NAME_PATTERN.test(v) ? v : bad(`cluster ${cluster}: ${key}=${printable(v)} is not a name`);
  };
  const model = word('model');
  const strategy = word('strategy');
  if (typeof model !== 'string') return model;
  if (typeof strategy !== 'string') return strategy;
  return {
    instance, host, port: s.port, clusterName: cluster, protocolVersion: proto, worldSize: world,
    model, strategy, ...(address !== undefined ? { address } : {}),
  };
}

/** `text` with control characters (terminal escapes among them) shown as `?`, at most 100 characters. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?').slice(0, 100);
}

export function isFound(x: FoundCluster | UnreadableAdvert): x is FoundCluster {
  return 'clusterName' in x;
}

function intOf(v: string | undefined): number | undefined {
  return v !== undefined && /^\d{1,9}$/.test(v) ? Number(v) : undefined;
}

/** "c1 at 10.0.0.1:29500 (3 processes, mlp, allreduce)" */
export function describeCluster(c: FoundCluster): string {
  return `${c.clusterName} at ${c.host}:${c.port} (${c.worldSize} process${c.worldSize === 1 ? '' : 'es'}, ${c.model}, ${c.strategy}, protocol ${c.protocolVersion})`;
}
