/**
 * `smolcluster launch`: start a cluster on several hosts over ssh, each process in a named tmux
 * session with a log file (docs/LAUNCH.md).
 *
 *   1. preflight every host: ssh reachable, node ≥ 20, the project built in project_dir, tmux;
 *   2. send each host the cluster token on ssh's stdin into a file of mode 0600, and a run script
 *      that reads it — the token never appears on a command line;
 *   3. start the server (rank 0) — with --elastic, the rendezvous store (`<prefix>-store`) — first,
 *      then the workers, in tmux sessions `<prefix>-server`, `<prefix>-worker<N>`, output appended
 *      to `<log_dir>/<session>.log`.
 *
 * `status`, `logs <host>` and `stop` find the sessions again from the same hosts file.
 */
import { resolveToken, TOKEN_ENV } from '../comm/token.js';
import { SmolError } from '../util/errors.js';
import { type HostEntry, type LaunchPlan, type Placement, sshHostPart } from './hosts.js';
import { isLoopbackHost } from './iface.js';
import { type SshResult, type SshTarget, runRemote, shq } from './ssh.js';
import { tmuxStart, tmuxState, tmuxStop } from './tmux.js';

const RUN_DIR = '~/.smolcluster/run';
const MIN_NODE_MAJOR = 20;

export interface Runner {
  run(target: SshTarget, script: string): Promise<SshResult>;
}

export const sshRunner: Runner = { run: (t, s) => runRemote(t, s) };

export function targetOf(plan: LaunchPlan, host: HostEntry): SshTarget {
  return { dest: host.ssh, options: [...plan.spec.ssh_options, ...(host.ssh_options ?? [])] };
}

export interface PreflightResult {
  host: string;
  ok: boolean;
  node?: string;
  problems: string[];
}

/** The checks, as one sh script; prints key=value lines. */
export function preflightScript(plan: LaunchPlan, host: HostEntry): string {
  const node = host.node ?? plan.spec.node;
  return [
    'echo reachable=yes',
    `echo node=$(${shq(node)} --version 2>/dev/null || echo missing)`,
    `if [ -f ${shq(`${plan.spec.project_dir.replace(/\/$/, '')}/dist/src/cli/main.js`)} ]; then echo project=yes; else echo project=no; fi`,
    'if command -v tmux >/dev/null 2>&1; then echo tmux=yes; else echo tmux=no; fi',
  ].join('\n');
}

export function parsePreflight(host: string, r: SshResult, projectDir: string): PreflightResult {
  const kv = Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]));
  const problems: string[] = [];
  if (r.code !== 0 || kv.reachable !== 'yes') {
    problems.push(`ssh failed: ${r.stderr.trim().split('\n').pop() || `exit code ${r.code}`}`);
    return { host, ok: false, problems };
  }
  const m = /^v(\d+)\./.exec(kv.node ?? '');
  if (!m) problems.push('node not found');
  else if (Number(m[1]) < MIN_NODE_MAJOR) problems.push(`node ${kv.node} is older than ${MIN_NODE_MAJOR}`);
  if (kv.project !== 'yes') problems.push(`no built project at ${projectDir} (dist/src/cli/main.js missing: clone, npm install, npm run build)`);
  if (kv.tmux !== 'yes') problems.push('tmux not installed');
  return { host, ok: problems.length === 0, node: kv.node, problems };
}

export async function preflight(plan: LaunchPlan, runner: Runner = sshRunner): Promise<PreflightResult[]> {
  return Promise.all(plan.spec.hosts.map(async (h) => parsePreflight(h.name, await runner.run(targetOf(plan, h), preflightScript(plan, h)), plan.spec.project_dir)));
}

/** The command line of one process (no secret in it). */
export function processArgs(plan: LaunchPlan, p: Placement): string[] {
  const s = plan.spec;
  const common = ['--strategy', s.strategy, ...(s.cluster ? ['--cluster', s.cluster] : []), ...(s.nn ? ['--nn', s.nn] : []), ...(p.host.iface ? ['--iface', p.host.iface] : []), ...s.args];
  const master = `${plan.masterHost.includes(':') ? `[${plan.masterHost}]` : plan.masterHost}:${plan.masterPort}`;
  const bind = bindHostFor(plan);
  if (p.role === 'store') return ['store', '--world-size', String(plan.worldSize), '--master', master, '--bind-host', bind, ...common];
  if (p.role === 'server') {
    return ['server', '--world-size', String(plan.worldSize), '--master', master, '--bind-host', bind, ...common];
  }
  const addr = p.host.address && !p.host.iface ? ['--iface', p.host.address] : [];
  // After `args`: the host's own device wins over one given to every process.
  const device = p.host.device ? ['--device', p.host.device] : [];
  return ['worker', '--rank', String(p.rank), '--world-size', String(plan.worldSize), '--master', master, ...addr, ...common, ...device];
}

/**
 * Where the server (or store) listens: every interface when some host is another machine, but
 * only loopback when every host of the plan is this machine (127.0.0.1, localhost): nothing
 * outside needs to reach it, so nothing outside can.
 */
export function bindHostFor(plan: LaunchPlan): string {
  return plan.spec.hosts.every((h) => isLoopbackHost(h.address ?? sshHostPart(h.ssh))) ? '127.0.0.1' : '0.0.0.0';
}

function tokenFile(p: Placement): string {
  return `${RUN_DIR}/${p.session}.token`;
}

function runFile(p: Placement): string {
  return `${RUN_DIR}/${p.session}.sh`;
}

/** The script tmux runs: output to the log, the token from its 0600 file into the environment. */
export function runScript(plan: LaunchPlan, p: Placement): string {
  const node = p.host.node ?? plan.spec.node;
  const dir = plan.spec.project_dir;
  return [
    '#!/bin/sh',
    `mkdir -p "$(dirname ${shq(p.log)})"`,
    `exec >> ${shq(p.log)} 2>&1`,
    `printf '[smolcluster launch] %s %s (rank %s) starting\\n' "$(date)" ${shq(p.session)} ${p.rank}`,
    `cd ${shq(dir)} || exit 1`,
    `${TOKEN_ENV}=$(cat ${shq(tokenFile(p))}) || exit 1`,
    `export ${TOKEN_ENV}`,
    `${shq(node)} dist/src/cli/main.js ${processArgs(plan, p).map(shq).join(' ')}`,
    'code=$?',
    `printf '[smolcluster launch] %s %s exited with code %s\\n' "$(date)" ${shq(p.session)} "$code"`,
    'exit $code',
  ].join('\n');
}

/**
 * Writes the token (this script is itself ssh's stdin, and printf is a shell builtin, so the token
 * is on no command line) and the run script, then starts tmux. Both are single-quoted words, not
 * heredocs: no content can end them early.
 */
export function startScript(plan: LaunchPlan, p: Placement, token: string): string {
  return [
    'umask 077',
    `mkdir -p ${shq(RUN_DIR)}`,
    `printf '%s\\n' ${shq(token)} > ${shq(tokenFile(p))}`,
    `chmod 600 ${shq(tokenFile(p))}`,
    `printf '%s\\n' ${shq(runScript(plan, p))} > ${shq(runFile(p))}`,
    tmuxStart(p.session, runFile(p), plan.spec.tmux_socket),
    'echo started',
  ].join('\n');
}

export interface LaunchOptions {
  dryRun?: boolean;
  runner?: Runner;
  token?: string;
  out?: (line: string) => void;
}

/** Preflight, then start every process (server first). Returns the plan's processes. */
export async function launch(plan: LaunchPlan, o: LaunchOptions = {}): Promise<Placement[]> {
  const out = o.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  if (o.dryRun) {
    out(`dry run: ${plan.processes.length} processes, ${plan.spec.strategy}, master ${plan.masterHost}:${plan.masterPort}`);
    out(`  port from ${plan.sources.masterPort}; ${plan.processes.filter((p) => p.role === 'worker').length} workers from ${plan.sources.workers}`);
    for (const h of plan.spec.hosts) out(`  preflight ${h.name}: ssh ${targetOf(plan, h).options?.join(' ') ?? ''} ${h.ssh} (node, ${plan.spec.project_dir}, tmux)`.replace(/ {2,}/g, ' '));
    for (const p of plan.processes) {
      out(`  ${p.host.name}: tmux session ${p.session}, log ${p.log}`);
      out(`    ${TOKEN_ENV}=<from ${tokenFile(p)}, mode 0600> ${plan.spec.node} dist/src/cli/main.js ${processArgs(plan, p).join(' ')}`);
    }
    return plan.processes;
  }
  // Before anything runs anywhere: an empty or short token is refused (resolveToken's rule).
  const token = resolveToken({ configured: o.token, generate: true });
  const runner = o.runner ?? sshRunner;
  const checks = await preflight(plan, runner);
  for (const c of checks) out(`preflight ${c.host}: ${c.ok ? `ok (node ${c.node})` : c.problems.join('; ')}`);
  const bad = checks.filter((c) => !c.ok);
  if (bad.length > 0) throw new SmolError('PREFLIGHT', `preflight failed on ${bad.map((c) => `${c.host} (${c.problems.join('; ')})`).join(', ')}`);
  for (const p of plan.processes) {
    const r = await runner.run(targetOf(plan, p.host), startScript(plan, p, token));
    if (r.code !== 0 || !r.stdout.includes('started')) {
      throw new SmolError('LAUNCH', `${p.host.name}: could not start ${p.session}: ${r.stderr.trim().split('\n').pop() || `exit code ${r.code}`}`);
    }
    out(`started ${p.session} on ${p.host.name} (${p.role === 'store' ? 'rendezvous store' : `rank ${p.rank}`}); log ${p.log}`);
  }
  return plan.processes;
}

export interface SessionStatus {
  host: string;
  session: string;
  rank: number;
  state: 'running' | 'stopped' | 'unreachable';
  lastLine: string;
}

export async function status(plan: LaunchPlan, runner: Runner = sshRunner): Promise<SessionStatus[]> {
  return Promise.all(plan.processes.map(async (p) => {
    const r = await runner.run(targetOf(plan, p.host), `${tmuxState(p.session, plan.spec.tmux_socket)}\ntail -n 1 ${shq(p.log)} 2>/dev/null || true`);
    if (r.code !== 0) return { host: p.host.name, session: p.session, rank: p.rank, state: 'unreachable' as const, lastLine: r.stderr.trim().split('\n').pop() ?? '' };
    const [state, ...rest] = r.stdout.split('\n');
    return { host: p.host.name, session: p.session, rank: p.rank, state: state.trim() === 'running' ? 'running' as const : 'stopped' as const, lastLine: rest.join('\n').trim().split('\r').pop() ?? '' };
  }));
}

/** The last `lines` lines of every log on `host`. */
export async function logs(plan: LaunchPlan, host: string, lines = 50, runner: Runner = sshRunner): Promise<string> {
  const mine = plan.processes.filter((p) => p.host.name === host);
  if (mine.length === 0) throw new SmolError('LAUNCH', `no host "${host}" in ${plan.file} (hosts: ${plan.spec.hosts.map((h) => h.name).join(', ')})`);
  const script = mine.map((p) => `printf '==> %s <==\\n' ${shq(p.log)}; tail -n ${lines} ${shq(p.log)} 2>&1 || true`).join('\n');
  const r = await runner.run(targetOf(plan, mine[0].host), script);
  if (r.code !== 0) throw new SmolError('LAUNCH', `${host}: ${r.stderr.trim().split('\n').pop() ?? `exit code ${r.code}`}`);
  return r.stdout;
}

/** Stops every session (workers first) and removes the token files. */
export async function stop(plan: LaunchPlan, runner: Runner = sshRunner): Promise<Array<{ host: string; session: string; result: string }>> {
  const out: Array<{ host: string; session: string; result: string }> = [];
  for (const p of [...plan.processes].reverse()) {
    const r = await runner.run(targetOf(plan, p.host), `${tmuxStop(p.session, plan.spec.tmux_socket)}\nrm -f ${shq(tokenFile(p))} ${shq(runFile(p))}`);
    out.push({ host: p.host.name, session: p.session, result: r.code === 0 ? r.stdout.trim() : `unreachable (${r.stderr.trim().split('\n').pop()})` });
  }
  return out;
}
