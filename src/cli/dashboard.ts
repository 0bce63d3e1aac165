import { Command } from 'commander';
import { startDashboard } from '../dashboard/server.js';
import { exposureWarning, wildcardUrls } from '../dashboard/exposure.js';
import { nonNegativeInt } from './options.js';

interface DashboardFlags {
  port: number;
  host: string;
}

/** `smolcluster dashboard RUN [RUN...]`: serves finished (or running) runs, side by side. */
export function dashboardCommand(): Command {
  return new Command('dashboard')
    .description('serve the dashboard of runs: experiment folders, result.json or run.json files (several: side by side)')
    .argument('<runs...>', 'experiments/<name> folders, or result.json / run.json files')
    .option('--port <n>', 'port (0: any free port)', nonNegativeInt, 3000)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .action(async (runs: string[], flags: DashboardFlags) => {
      const dashboard = await startDashboard({ runs, port: flags.port, host: flags.host });
      process.stderr.write(`smolcluster: dashboard at ${dashboard.url} (Ctrl-C to stop)\n`);
      const warning = exposureWarning(flags.host, dashboard.port);
      if (warning) process.stderr.write(`smolcluster: ${warning}\n`);
      for (const url of wildcardUrls(flags.host, dashboard.port)) process.stderr.write(`smolcluster: dashboard reachable at ${url}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void dashboard.close().then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
