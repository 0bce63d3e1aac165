import { Command } from 'commander';
import { loadHostsFile } from '../launch/hosts.js';
import { launch, logs, status, stop } from '../launch/launcher.js';
import { positiveInt } from './options.js';

const HOSTS_HELP = 'hosts file (docs/LAUNCH.md)';

/** `smolcluster launch --hosts hosts.yaml [--dry-run]`, and `launch status|logs|stop`. */
export function launchCommand(): Command {
  const cmd = new Command('launch')
    .description('start a cluster on several hosts over ssh, each process in a named tmux session with a log file')
    .option('--hosts <file>', HOSTS_HELP, 'hosts.yaml')
    .option('--dry-run', 'print the checks and commands without connecting anywhere')
    .action(async (flags: { hosts: string; dryRun?: boolean }) => {
      await launch(loadHostsFile(flags.hosts), { dryRun: flags.dryRun });
    });
  // `launch status --hosts F`: commander hands --hosts to `launch` itself; take it from there.
  const hostsOf = (sub: Command): string => (sub.getOptionValueSource('hosts') === 'cli' ? sub.opts<{ hosts: string }>().hosts : cmd.opts<{ hosts: string }>().hosts);
  cmd.command('status')
    .description('whether each session runs, and the last line of its log')
    .option('--hosts <file>', HOSTS_HELP, 'hosts.yaml')
    .action(async (_flags: unknown, sub: Command) => {
      for (const s of await status(loadHostsFile(hostsOf(sub)))) {
        process.stdout.write(`${s.host.padEnd(12)} ${s.session.padEnd(24)} rank ${String(s.rank).padEnd(3)} ${s.state.padEnd(11)} ${s.lastLine}\n`);
      }
    });
  cmd.command('logs')
    .description('the last lines of the logs on one host')
    .argument('<host>', 'a host name from the hosts file')
    .option('--hosts <file>', HOSTS_HELP, 'hosts.yaml')
    .option('-n, --lines <n>', 'lines per log', positiveInt, 50)
    .action(async (host: string, flags: { lines: number }, sub: Command) => {
      process.stdout.write(await logs(loadHostsFile(hostsOf(sub)), host, flags.lines));
    });
  cmd.command('stop')
    .description('stop every session and remove the token files')
    .option('--hosts <file>', HOSTS_HELP, 'hosts.yaml')
    .action(async (_flags: unknown, sub: Command) => {
      for (const r of await stop(loadHostsFile(hostsOf(sub)))) process.stdout.write(`${r.host} ${r.session}: ${r.result}\n`);
    });
  return cmd;
}
