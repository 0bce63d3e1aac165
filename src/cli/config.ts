import { Command } from 'commander';
import { basename } from 'node:path';
import { CONFIG_FILE_OPTIONS } from '../config/options/index.js';
import { loadClusterConfig, loadConfigFile, loadNnConfig } from '../config/load.js';
import { problemsOf, throwProblems } from '../config/problems.js';
import type { ConfigError } from '../util/errors.js';
import { addressKeys, clusterOptionValues, clusterPlan, nnOptionValues, rankFromHostLists } from '../config/settings.js';
import { rankFromEnvironment, worldSizeFromEnvironment } from '../launch/env.js';
import { addOptions } from './option_table.js';

/** --cluster and --nn, applied (by the preAction hook below) before the command's action runs. */
export function addConfigFlags(cmd: Command): Command {
  return addOptions(cmd, CONFIG_FILE_OPTIONS).hook('preAction', (c) => applyConfigFiles(c));
}

/**
 * Applies --cluster and --nn files to a command's options before its action runs. A value typed on
 * the command line always wins; a file's value replaces only a default (or an absent option).
 */
export function applyConfigFiles(cmd: Command): void {
  const opts = cmd.opts<{ cluster?: string; nn?: string }>();
  const has = (key: string): boolean => cmd.options.some((o) => o.attributeName() === key);
  const set = (values: Record<string, unknown>): void => {
    for (const [key, value] of Object.entries(values)) {
      if (!has(key) || cmd.getOptionValueSource(key) === 'cli') continue;
      cmd.setOptionValueWithSource(key, value, 'config');
    }
  };
  // Both files read before either is applied: every problem of both, in one message.
  const problems: ConfigError[] = [];
  const load = <T>(file: string | undefined, read: (f: string) => T): T | undefined => {
    if (!file) return undefined;
    try {
      return read(file);
    } catch (err) {
      problems.push(...problemsOf(err));
      return undefined;
    }
  };
  const cluster = load(opts.cluster, loadClusterConfig);
  const nn = load(opts.nn, loadNnConfig);
  throwProblems(problems);
  if (opts.cluster && cluster) {
    const c = cluster;
    const values = clusterOptionValues(c);
    // `train` runs the cluster locally: num_workers worker processes, addresses unused (said once).
    if (has('workers')) {
      values.workers = c.num_workers;
      const unused = addressKeys(c);
      if (unused.length > 0) {
        process.stderr.write(`smolcluster: note: ${opts.cluster}: ${unused.join(', ')} not used: train runs all ${c.num_workers} workers on this machine (use server/worker or launch to place them)\n`);
      }
    }
    if (has('rank') && rankFromEnvironment() === undefined) {
      const rank = rankFromHostLists(opts.cluster, c);
      if (rank !== undefined) values.rank = rank;
    }
    // The server binds host_ip (e.g. 0.0.0.0) and dials itself on loopback.
    const plan = clusterPlan(c);
    if (has('bindHost') && plan.bindHost) values.bindHost = plan.bindHost;
    // The launcher's environment (torchrun, Slurm, OpenMPI) places the process before the file does.
    if (worldSizeFromEnvironment() !== undefined) delete values.worldSize;
    if (process.env.MASTER_ADDR) delete values.master;
    set(values);
  }
  if (nn) {
    const values = nnOptionValues(nn);
    // SmolCluster's server averages the gradients and sends the average back, and every node steps
    // its own model — unless cluster_config.yaml chose (ps_reply) or a flag did.
    if (has('psReply') && cmd.getOptionValueSource('psReply') !== 'config') values.psReply = 'gradients';
    set(values);
  }
}

/** Where the placement options' values came from, for those a --cluster file set (worker's start line). */
export function placementFromFile(cmd: Command): { rank?: string; worldSize?: string; master?: string } {
  const file = cmd.opts<{ cluster?: string }>().cluster;
  const from = (key: string): string | undefined => (file && cmd.getOptionValueSource(key) === 'config' ? basename(file) : undefined);
  return { rank: from('rank'), worldSize: from('worldSize'), master: from('master') };
}

export function configCommand(): Command {
  const cmd = new Command('config').description('SmolCluster configuration files (cluster_config.yaml, nn_config.yaml)');
  cmd.command('check')
    .description('validate configuration files; each error names the file, the key and what was expected')
    .argument('<files...>', 'YAML files (the kind is recognised from the keys)')
    .action((files: string[]) => {
      // Every file, every problem: a user with four broken files fixes them in one pass.
      let failed = false;
      for (const file of files) {
        let loaded: ReturnType<typeof loadConfigFile>;
        try {
          loaded = loadConfigFile(file);
        } catch (err) {
          for (const p of problemsOf(err)) process.stderr.write(`smolcluster: error: ${p.message}\n`);
          failed = true;
          continue;
        }
        if (loaded.kind === 'cluster') {
          const plan = clusterPlan(loaded.config);
          const where = plan.masterHost ? ` at ${plan.masterHost}:${plan.port ?? '?'}` : '';
          process.stdout.write(`${file}: ok (cluster config: ${plan.strategy}, ${loaded.config.num_workers} worker${loaded.config.num_workers > 1 ? 's' : ''}${where})\n`);
        } else {
          const n = loaded.config;
          process.stdout.write(`${file}: ok (nn config: ${n.model.type} on ${n.dataset.name}, batch ${n.batch_size}, lr ${n.learning_rate}, ${n.num_epochs} epoch${n.num_epochs > 1 ? 's' : ''})\n`);
        }
      }
      if (failed) process.exitCode = 1;
    });
  return cmd;
}
