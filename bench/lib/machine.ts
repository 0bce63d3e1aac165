import { spawnSync } from 'node:child_process';
import os from 'node:os';

/** What a benchmark figure depends on besides the code: recorded beside every result. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  availableParallelism: number;
  memGiB: number;
  platform: string;
  arch: string;
  release: string;
  /** 1-minute load average when the bench started: > 0.5 or so means something else was running. */
  loadAvg1: number;
  node: string;
  v8: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: os.platform(),
    arch: os.arch(),
    release: os.release(),
    loadAvg1: Math.round(os.loadavg()[0] * 100) / 100,
    node: process.versions.node,
    v8: process.versions.v8,
  };
}

/** The checked-out commit and whether the tree had local changes, or null outside a git checkout. */
export function gitInfo(cwd: string): { commit: string; dirty: boolean } | null {
  const head = spawnSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd, encoding: 'utf8' });
  if (head.status !== 0) return null;
  const status = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, encoding: 'utf8' });
  return { commit: head.stdout.trim(), dirty: status.status === 0 && status.stdout.trim() !== '' };
}
