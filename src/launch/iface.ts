/**
 * Which network interface carries the data connections.
 *
 * `--iface NAME` (or SMOLCLUSTER_IFNAME) names it, or gives an address directly. Otherwise, when
 * the master is not on this machine, the interfaces on the master's subnet are candidates and a
 * Thunderbolt link is preferred over wired Ethernet, wired over anything else, and Wi-Fi last
 * (Mac minis joined by a Thunderbolt bridge also see each other over Wi-Fi). When no interface is
 * on the master's subnet the operating system's route to the master decides (rendezvous default).
 */
import { isIP } from 'node:net';
import os from 'node:os';
import { ConfigError } from '../util/errors.js';

export const IFNAME_ENV = 'SMOLCLUSTER_IFNAME';

export type LinkKind = 'thunderbolt' | 'wired' | 'other' | 'wifi';

const PREFERENCE: Record<LinkKind, number> = { thunderbolt: 0, wired: 1, other: 2, wifi: 3 };

/** What kind of link an interface name denotes, by the naming conventions of macOS and Linux. */
export function classifyInterface(name: string, platform: NodeJS.Platform = process.platform): LinkKind {
  if (/thunderbolt/i.test(name)) return 'thunderbolt';
  if (platform === 'darwin') {
    // macOS: the Thunderbolt bridge is bridgeN; enN are Ethernet (and the built-in Wi-Fi of laptops).
    if (/^bridge\d+$/.test(name)) return 'thunderbolt';
    if (/^en\d+$/.test(name)) return 'wired';
    return 'other';
  }
  if (/^(wl|wlan|wifi|ath|ra)\w*/i.test(name)) return 'wifi';
  if (/^(eth|en|em|eno|ens|enp|enx)\w*/.test(name)) return 'wired';
  return 'other';
}

export interface InterfaceChoice {
  name: string;
  address: string;
  kind: LinkKind;
}

type Interfaces = NodeJS.Dict<os.NetworkInterfaceInfo[]>;

function ipv4Of(infos: os.NetworkInterfaceInfo[] | undefined): os.NetworkInterfaceInfo | undefined {
  return infos?.find((i) => i.family === 'IPv4');
}

/**
 * The address to listen on and advertise for data connections, or null to keep the rendezvous
 * defaults (loopback clusters, or no interface on the master's subnet).
 */
export function chooseInterface(opts: {
  requested?: string;
  masterHost: string;
  interfaces?: Interfaces;
  platform?: NodeJS.Platform;
  env?: NodeJS.ProcessEnv;
}): InterfaceChoice | null {
  const interfaces = opts.interfaces ?? os.networkInterfaces();
  const platform = opts.platform ?? process.platform;
  const fromEnv = opts.env ?? process.env;
  const requested = opts.requested ?? (fromEnv[IFNAME_ENV] || undefined);
  if (requested && requested !== 'auto') {
    const source = opts.requested ? '--iface' : IFNAME_ENV;
    if (isIP(requested)) return { name: requested, address: requested, kind: 'other' };
    const info = ipv4Of(interfaces[requested]);
    if (!info) {
      const names = Object.keys(interfaces).filter((n) => ipv4Of(interfaces[n])).join(', ');
      throw new ConfigError(opts.requested ? 'command line' : 'environment', source, `no interface "${requested}" with an IPv4 address (this host has: ${names || 'none'})`);
    }
    return { name: requested, address: info.address, kind: classifyInterface(requested, platform) };
  }
  const master = opts.masterHost;
  if (isLoopbackHost(master) || isIP(master) !== 4) return null;
  const candidates: InterfaceChoice[] = [];
  for (const [name, infos] of Object.entries(interfaces)) {
    for (const info of infos ?? []) {
      if (info.family !== 'IPv4' || info.internal || !sameSubnet(info.address, master, info.netmask)) continue;
      candidates.push({ name, address: info.address, kind: classifyInterface(name, platform) });
    }
  }
  candidates.sort((a, b) => PREFERENCE[a.kind] - PREFERENCE[b.kind] || a.name.localeCompare(b.name));
  return candidates[0] ?? null;
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1';
}

function toInt(ip: string): number {
  return ip.split('.').reduce((n, part) => ((n << 8) | Number(part)) >>> 0, 0);
}

export function sameSubnet(a: string, b: string, netmask: string): boolean {
  if (isIP(a) !== 4 || isIP(b) !== 4 || isIP(netmask) !== 4) return false;
  const m = toInt(netmask);
  return ((toInt(a) & m) >>> 0) === ((toInt(b) & m) >>> 0);
}
