/**
 * What each network device is, asked of the system rather than guessed from its name. On macOS
 * `en0` is Wi-Fi on a laptop and Ethernet on a Mac mini, so names say nothing: `networksetup
 * -listallhardwareports` says, per device, its hardware port ("Wi-Fi", "Ethernet", "Thunderbolt
 * Bridge", "USB 10/100/1000 LAN", "Thunderbolt 1"). On Linux a wireless device has a
 * /sys/class/net/<dev>/wireless directory.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export type PortKind = 'thunderbolt' | 'wired' | 'wifi' | 'other';

/** `networksetup -listallhardwareports` output → device → hardware port name. */
export function parseHardwarePorts(text: string): Map<string, string> {
  const ports = new Map<string, string>();
  let port: string | null = null;
  for (const line of text.split(/\r?\n/)) {
    const p = /^Hardware Port:\s*(.+?)\s*$/.exec(line);
    if (p) {
      port = p[1];
      continue;
    }
    const d = /^Device:\s*(\S+)\s*$/.exec(line);
    if (d && port !== null) {
      ports.set(d[1], port);
      port = null;
    }
  }
  return ports;
}

/** The kind of link a macOS hardware port name denotes. */
export function kindOfPort(port: string): PortKind {
  if (/wi-?fi|airport/i.test(port)) return 'wifi';
  if (/thunderbolt/i.test(port)) return 'thunderbolt';
  if (/ethernet|\blan\b/i.test(port)) return 'wired';
  return 'other';
}

let cached: Map<string, string> | null = null;

/** This Mac's hardware ports (empty elsewhere, or when networksetup cannot run); asked once per process. */
export function macHardwarePorts(): Map<string, string> {
  if (cached) return cached;
  cached = new Map();
  if (process.platform !== 'darwin') return cached;
  const r = spawnSync('networksetup', ['-listallhardwareports'], { encoding: 'utf8', timeout: 5000 });
  if (r.status === 0) cached = parseHardwarePorts(r.stdout);
  return cached;
}

/** True when Linux reports `dev` as a wireless device. */
export function linuxIsWireless(dev: string, sysNet = '/sys/class/net'): boolean {
  return existsSync(`${sysNet}/${dev}/wireless`) || existsSync(`${sysNet}/${dev}/phy80211`);
}
