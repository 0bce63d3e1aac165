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
import { kindOfPort, linuxIsWireless, macHardwarePorts } from './hardware_ports.js';

export const IFNAME_ENV = 'SMOLCLUSTER_IFNAME';

export type LinkKind = 'thunderbolt' | 'wired' | 'other' | 'wifi';

const PREFERENCE: Record<LinkKind, number> = { thunderbolt: 0, wired: 1, other: 2, wifi: 3 };

/**
 * What kind of link an interface is. On macOS the system's hardware ports decide (`ports`, from
 * `networksetup -listallhardwareports`: en0 is Wi-Fi on laptops); on Linux a device the kernel
 * reports as wireless is Wi-Fi. Otherwise the naming conventions of macOS and Linux.
 */
export function classifyInterface(name: string, platform: NodeJS.Platform = process.platform, ports?: Map<string, string>): LinkKind {
  const port = (ports ?? (platform === process.platform ? macHardwarePorts() : undefined))?.get(name);
  if (port !== undefined) return kindOfPort(port);
  if (/thunderbolt/i.test(name)) return 'thunderbolt';
  if (platform === 'linux' && platform === process.platform && linuxIsWireless(name)) return 'wifi';
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
  const named = opts.requested ? { value: opts.requested, source: '--iface' } : interfaceFromEnv(fromEnv, interfaces);
  const requested = named?.value;
  if (requested && requested !== 'auto') {
    const source = named.source;
    if (isIP(requested)) return { name: requested, address: requested, kind: 'other' };
    const info = ipv4Of(interfaces[requested]);
    if (!info) {
      const names = Object.keys(interfaces).filter((n) => ipv4Of(interfaces[n])).join(', ');
      throw new ConfigError(source === '--iface' ? 'command line' : 'environment', source, `no interface "${requested}" with an IPv4 address (this host has: ${names || 'none'})`);
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

/** Interface variables in the order they are read: ours, then torch.distributed's Gloo and NCCL ones. */
export const IFNAME_VARS = [IFNAME_ENV, 'GLOO_SOCKET_IFNAME', 'NCCL_SOCKET_IFNAME'] as const;

/**
 * The interface the environment names. GLOO_SOCKET_IFNAME and NCCL_SOCKET_IFNAME may list several
 * ("eth0,eth1": the first this host has); NCCL's "=eth0" means exactly eth0 and "eth" any name
 * starting so; an exclusion list ("^docker,lo") names nothing, so the choice stays automatic.
 */
export function interfaceFromEnv(env: NodeJS.ProcessEnv, interfaces: Interfaces): { value: string; source: string } | undefined {
  for (const source of IFNAME_VARS) {
    const raw = env[source]?.trim();
    if (!raw || raw.startsWith('^')) continue;
    if (source === IFNAME_ENV) return { value: raw, source };
    const exact = raw.startsWith('=');
    const entries = (exact ? raw.slice(1) : raw).split(',').map((e) => e.trim()).filter(Boolean);
    const present = Object.keys(interfaces).filter((n) => ipv4Of(interfaces[n]));
    for (const e of entries) {
      if (present.includes(e) || isIP(e)) return { value: e, source };
      const prefixed = !exact && source === 'NCCL_SOCKET_IFNAME' ? present.find((n) => n.startsWith(e)) : undefined;
      if (prefixed) return { value: prefixed, source };
    }
    // None present: name the first, so the error lists what this host has.
    return { value: entries[0], source };
  }
  return undefined;
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
