/**
 * An emulated link between two hosts on one machine: network namespaces A and B, each end's egress
 * shaped with a token bucket (`tc tbf`). Only the 10.234.x.0/24 addresses made here are used.
 *
 * Latency: the kernel here has no netem, so a preset with latency ≥ 0.1 ms puts a third namespace M
 * between A and B (veth A–M and B–M) in which bench/lib/link_relay.py forwards every Ethernet frame
 * after holding it for the preset's one-way latency. Every packet of every process crosses it, so
 * PyTorch's Gloo and smolcluster see the same round trip, with both kernels' TCP reacting to it.
 * A preset under 0.1 ms (thunderbolt) is a direct veth pair: the relay's own per-frame cost
 * (≈ 0.1–0.3 ms here) would exceed the latency it is asked to add. `measureRttMs` reports what the
 * link really gives.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from './child.js';

export interface LinkPreset {
  name: string;
  /** Token-bucket rate in Mbit/s. */
  mbit: number;
  /** One-way latency in ms, added by the relay namespace (none under 0.1 ms). */
  latencyMs: number;
}

export const LINK_PRESETS: Record<string, LinkPreset> = {
  wifi: { name: 'wifi', mbit: 200, latencyMs: 5 },
  ethernet: { name: 'ethernet', mbit: 1000, latencyMs: 0.2 },
  thunderbolt: { name: 'thunderbolt', mbit: 10_000, latencyMs: 0.05 },
};

/** Below this one-way latency the link is a direct veth pair (no relay). */
export const RELAY_MIN_LATENCY_MS = 0.1;

export interface Link {
  ns: [string, string];
  addr: [string, string];
  /** Interface names inside the namespaces (GLOO_SOCKET_IFNAME). */
  dev: [string, string];
  /** Whether frames cross the delaying relay. */
  relayed: boolean;
  close(): void;
}

const RELAY = join(packageRoot(import.meta.url), 'bench/lib/link_relay.py');

function sh(args: string[]): void {
  execFileSync(args[0], args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
}

const inNs = (ns: string, args: string[]): void => sh(['ip', 'netns', 'exec', ns, ...args]);

/** Whether namespaces can be made here (root, `ip netns`, `tc`, and a Python for the relay). */
export function netnsAvailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  try {
    sh(['ip', 'netns', 'list']);
    sh(['tc', '-V']);
    sh([relayPython(), '-c', 'import socket; socket.AF_PACKET']);
    return null;
  } catch (e) {
    return `ip netns / tc / python3 unusable: ${(e as Error).message.split('\n')[0]}`;
  }
}

function relayPython(): string {
  return process.env.SMOLCLUSTER_RELAY_PYTHON ?? 'python3';
}

export async function createLink(preset: LinkPreset): Promise<Link> {
  const id = (process.pid % 1296).toString(36).padStart(2, '0');
  const relayed = preset.latencyMs >= RELAY_MIN_LATENCY_MS;
  const ns: [string, string] = [`sclk${id}a`, `sclk${id}b`];
  const mid = `sclk${id}m`;
  const veth: [string, string] = [`sclk${id}va`, `sclk${id}vb`];
  const midEnds: [string, string] = [`sclk${id}ma`, `sclk${id}mb`];
  const subnet = `10.234.${process.pid % 250}`;
  const addr: [string, string] = [`${subnet}.1`, `${subnet}.2`];
  let relay: ChildProcess | null = null;
  const close = (): void => {
    relay?.kill('SIGTERM');
    for (const n of [...ns, mid]) {
      try {
        sh(['ip', 'netns', 'del', n]);
      } catch {
        // not made or already gone
      }
    }
  };
  close();
  try {
    for (const n of relayed ? [...ns, mid] : ns) sh(['ip', 'netns', 'add', n]);
    if (relayed) {
      for (let i = 0; i < 2; i++) sh(['ip', 'link', 'add', veth[i], 'netns', ns[i], 'type', 'veth', 'peer', 'name', midEnds[i], 'netns', mid]);
      inNs(mid, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
      for (const d of [...midEnds, 'lo']) inNs(mid, ['ip', 'link', 'set', d, 'up']);
    } else {
      sh(['ip', 'link', 'add', veth[0], 'netns', ns[0], 'type', 'veth', 'peer', 'name', veth[1], 'netns', ns[1]]);
    }
    // Bucket depth: at least two timer ticks' worth of bytes at the rate (HZ 250), so the rate is reachable.
    const burst = Math.max(64 * 1024, Math.ceil(((preset.mbit * 1e6) / 8 / 250) * 2));
    for (let i = 0; i < 2; i++) {
      inNs(ns[i], ['ip', 'addr', 'add', `${addr[i]}/24`, 'dev', veth[i]]);
      inNs(ns[i], ['ip', 'link', 'set', veth[i], 'up']);
      inNs(ns[i], ['ip', 'link', 'set', 'lo', 'up']);
      inNs(ns[i], ['tc', 'qdisc', 'add', 'dev', veth[i], 'root', 'tbf', 'rate', `${preset.mbit}mbit`, 'burst', String(burst), 'latency', '100ms']);
    }
    if (relayed) relay = await startRelay(mid, midEnds, preset.latencyMs);
  } catch (e) {
    close();
    throw e;
  }
  return { ns, addr, dev: veth, relayed, close };
}

/** The relay at real-time priority, so its hold time stays the preset's on a loaded machine. */
function startRelay(ns: string, ends: [string, string], latencyMs: number): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, 'chrt', '-f', '50', relayPython(), RELAY, ends[0], ends[1], String(Math.round(latencyMs * 1000))], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.stdout!.setEncoding('utf8').once('data', (s: string) => (s.startsWith('ready') ? resolve(child) : reject(new Error(`link relay: ${s}`))));
    child.once('exit', (code) => reject(new Error(`link relay exited (${code}): ${err.trim()}`)));
    setTimeout(() => reject(new Error('link relay not ready after 10 s')), 10_000).unref();
  });
}

/** Median round trip of a 1-byte TCP ping-pong from A to B over the link, in ms (what both sides see). */
export async function measureRttMs(link: Link, rounds = 30): Promise<number> {
  const script = `const net=require('net');const [mode,host]=process.argv.slice(1);
if(mode==='s'){const s=net.createServer(c=>{c.setNoDelay(true);c.on('data',d=>c.write(d));s.close();}).listen(29699,host,()=>console.log('up'));}
else{const c=net.connect(29699,host,async()=>{c.setNoDelay(true);const t=[];for(let i=0;i<${rounds};i++){const t0=performance.now();await new Promise(r=>{c.once('data',r);c.write('x');});t.push(performance.now()-t0);}t.sort((a,b)=>a-b);console.log(t[t.length>>1]);c.destroy();});}`;
  const server = spawn('ip', ['netns', 'exec', link.ns[1], process.execPath, '-e', script, 's', link.addr[1]], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    await new Promise<void>((resolve, reject) => {
      server.stdout!.once('data', () => resolve());
      server.once('exit', (code) => reject(new Error(`rtt probe server exited (${code})`)));
    });
    const out = execFileSync('ip', ['netns', 'exec', link.ns[0], process.execPath, '-e', script, 'c', link.addr[1]], { encoding: 'utf8', timeout: 30_000 });
    return Number(out.trim());
  } finally {
    server.kill();
  }
}
