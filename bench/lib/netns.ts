/**
 * Two network namespaces joined by one veth pair, each end shaped with a token bucket (`tc tbf`):
 * an emulated link between two hosts on one machine. Only the 10.234.x.0/24 addresses made here are
 * used. The kernel here has no netem, so latency is not added by tc: bench:links passes the
 * transport's test-only knob (SMOLCLUSTER_TEST_LINK_DELAY_MS) to smolcluster's workers instead.
 */
import { execFileSync } from 'node:child_process';

export interface LinkPreset {
  name: string;
  /** Token-bucket rate in Mbit/s. */
  mbit: number;
  /** One-way latency in ms (added in our transport, at 1 ms resolution; not to Gloo). */
  latencyMs: number;
}

export const LINK_PRESETS: Record<string, LinkPreset> = {
  wifi: { name: 'wifi', mbit: 200, latencyMs: 5 },
  ethernet: { name: 'ethernet', mbit: 1000, latencyMs: 0.2 },
  thunderbolt: { name: 'thunderbolt', mbit: 10_000, latencyMs: 0.05 },
};

export interface Link {
  ns: [string, string];
  addr: [string, string];
  /** Interface names inside the namespaces (GLOO_SOCKET_IFNAME). */
  dev: [string, string];
  close(): void;
}

function sh(args: string[]): void {
  execFileSync(args[0], args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Whether namespaces can be made here (root and `ip netns`). */
export function netnsAvailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  try {
    sh(['ip', 'netns', 'list']);
    sh(['tc', '-V']);
    return null;
  } catch (e) {
    return `ip netns / tc unusable: ${(e as Error).message.split('\n')[0]}`;
  }
}

export function createLink(preset: LinkPreset): Link {
  const id = (process.pid % 1296).toString(36).padStart(2, '0');
  const ns: [string, string] = [`sclk${id}a`, `sclk${id}b`];
  const veth: [string, string] = [`sclk${id}va`, `sclk${id}vb`];
  const subnet = `10.234.${process.pid % 250}`;
  const addr: [string, string] = [`${subnet}.1`, `${subnet}.2`];
  const close = (): void => {
    for (const n of ns) {
      try {
        sh(['ip', 'netns', 'del', n]);
      } catch {
        // not made or already gone
      }
    }
  };
  close();
  try {
    for (const n of ns) sh(['ip', 'netns', 'add', n]);
    sh(['ip', 'link', 'add', veth[0], 'netns', ns[0], 'type', 'veth', 'peer', 'name', veth[1], 'netns', ns[1]]);
    // Bucket depth: at least two timer ticks' worth of bytes at the rate (HZ 250), so the rate is reachable.
    const burst = Math.max(64 * 1024, Math.ceil(((preset.mbit * 1e6) / 8 / 250) * 2));
    for (let i = 0; i < 2; i++) {
      sh(['ip', 'netns', 'exec', ns[i], 'ip', 'addr', 'add', `${addr[i]}/24`, 'dev', veth[i]]);
      sh(['ip', 'netns', 'exec', ns[i], 'ip', 'link', 'set', veth[i], 'up']);
      sh(['ip', 'netns', 'exec', ns[i], 'ip', 'link', 'set', 'lo', 'up']);
      sh(['ip', 'netns', 'exec', ns[i], 'tc', 'qdisc', 'add', 'dev', veth[i], 'root', 'tbf', 'rate', `${preset.mbit}mbit`, 'burst', String(burst), 'latency', '100ms']);
    }
  } catch (e) {
    close();
    throw e;
  }
  return { ns, addr, dev: veth, close };
}
