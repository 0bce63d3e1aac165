/**
 * Hosts for multi-host tests: network namespaces on one bridge, each with a veth and an address in
 * a private subnet, created with names unique to this process and removed whatever happens. Only
 * these addresses are ever used. Also the process runner those tests share.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { TEST_TOKEN } from './cluster.js';

export interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs argv to the end (SIGKILL at the deadline), with the cluster token and no launcher variables. */
export function runToEnd(argv: string[], timeoutMs: number): Promise<Exit> {
  return startProcess(argv, timeoutMs).exit;
}

export interface Started {
  child: ChildProcess;
  /** What it wrote so far. */
  stderr(): string;
  exit: Promise<Exit>;
}

/** Starts argv (SIGKILL at the deadline), with the cluster token and no launcher variables. */
export function startProcess(argv: string[], timeoutMs: number): Started {
  const env: NodeJS.ProcessEnv = { ...process.env, SMOLCLUSTER_TOKEN: TEST_TOKEN };
  for (const k of ['RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'SMOLCLUSTER_RUN_OWNER', 'SMOLCLUSTER_IFNAME']) delete env[k];
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exit = new Promise<Exit>((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { child, stderr: () => stderr, exit };
}

export function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function quiet(cmd: string, args: string[]): void {
  try {
    sh(cmd, args);
  } catch {
    // not made, or already gone
  }
}

export function stderrOf(err: unknown): string {
  return ((err as { stderr?: Buffer }).stderr ?? '').toString().trim() || (err as Error).message;
}

export class BridgedHosts {
  readonly ns: string[];
  readonly addr: string[];
  private readonly bridge: string;
  private readonly id: string;

  /** `tag`: a few letters naming the test (interface names stay under 15 characters); `subnet`: 10.<subnet>.x.0/24. */
  constructor(tag: string, count: number, subnet: number) {
    this.id = `${tag}${(process.pid % 1296).toString(36).padStart(2, '0')}`;
    this.ns = Array.from({ length: count }, (_, i) => `${this.id}-${i}`);
    this.bridge = `${this.id}br`;
    const net = `10.${subnet}.${process.pid % 250}`;
    this.addr = this.ns.map((_, i) => `${net}.${i + 1}`);
  }

  /** The namespace side of host i's veth (for `tc` on its uplink). */
  nsVeth(i: number): string {
    return `${this.id}n${i}`;
  }

  /** Null when namespaces can be made here (root, iproute2 with netns), else why not. */
  static unavailable(): string | null {
    if (process.getuid?.() !== 0) return 'not root';
    const probe = `scprobe${process.pid}`;
    try {
      sh('ip', ['netns', 'add', probe]);
      sh('ip', ['netns', 'del', probe]);
      return null;
    } catch (err) {
      return `ip netns failed: ${stderrOf(err)}`;
    }
  }

  /** Makes the bridge and every host; on failure removes what was made and throws. */
  create(): void {
    try {
      sh('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
      sh('ip', ['link', 'set', this.bridge, 'up']);
      this.ns.forEach((ns, i) => {
        const host = this.hostVeth(i);
        sh('ip', ['netns', 'add', ns]);
        sh('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', this.nsVeth(i)]);
        sh('ip', ['link', 'set', this.nsVeth(i), 'netns', ns]);
        sh('ip', ['link', 'set', host, 'master', this.bridge]);
        sh('ip', ['link', 'set', host, 'up']);
        sh('ip', ['-n', ns, 'addr', 'add', `${this.addr[i]}/24`, 'dev', this.nsVeth(i)]);
        sh('ip', ['-n', ns, 'link', 'set', this.nsVeth(i), 'up']);
        sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      });
    } catch (err) {
      this.remove();
      throw err;
    }
  }

  /**
   * Routes multicast (224.0.0.0/4) out of every host's veth, as a LAN's default route would: mDNS
   * then works with the system's choice of interface, inside these namespaces only.
   */
  routeMulticast(): void {
    this.ns.forEach((ns, i) => sh('ip', ['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', this.nsVeth(i)]));
  }

  remove(): void {
    for (const ns of this.ns) quiet('ip', ['netns', 'del', ns]);
    for (let i = 0; i < this.ns.length; i++) quiet('ip', ['link', 'del', this.hostVeth(i)]);
    quiet('ip', ['link', 'del', this.bridge]);
  }

  /** argv run inside host i's namespace. */
  exec(i: number, argv: string[]): string[] {
    return ['ip', 'netns', 'exec', this.ns[i], ...argv];
  }

  private hostVeth(i: number): string {
    return `${this.id}h${i}`;
  }
}
