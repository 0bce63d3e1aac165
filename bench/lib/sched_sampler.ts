/**
 * How much of a run's wall time its processes spent on a CPU and how much runnable but waiting for
 * one (another process had the core), from Linux's /proc/PID/task/TID/schedstat, sampled for a
 * process tree while it runs. On the shared 2-core machine the second figure is what a loaded window
 * adds to every step of a synchronous data-parallel run; on a quiet machine it is near zero.
 * Elsewhere (no /proc) the sampler records nothing and reports null.
 */
import { readFileSync, readdirSync } from 'node:fs';

interface Sample {
  /** ms since the epoch. */
  at: number;
  /** pid → [ns on a CPU, ns waiting on a run queue], summed over the process's threads. */
  byPid: Map<number, [number, number]>;
}

export interface SchedShare {
  /** Processes seen in both samples (e.g. the two ranks). */
  processes: number;
  /** Per process, per step: ms on a CPU and ms runnable but waiting for a CPU. */
  cpuMs: number;
  runQueueMs: number;
  /** The span measured: wall ms between the two samples, and the steps that ended inside it. */
  wallMs: number;
  steps: number;
}

export class SchedSampler {
  private readonly samples: Sample[] = [];
  private readonly timer: NodeJS.Timeout;

  /** `rootPids` and their descendants; with `skipRoots`, only the descendants (a launcher's workers). */
  constructor(private readonly rootPids: readonly number[], private readonly skipRoots = false, everyMs = 100) {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.sample();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * Per-process CPU and run-queue time per step between the first sample at or after `fromMs` and
   * the last at or before `toMs`, over the steps that ended in between (`stepEnds`, ms since the
   * epoch); null without two such samples or without /proc.
   */
  over(fromMs: number, toMs: number, stepEnds: readonly number[]): SchedShare | null {
    const lo = this.samples.find((s) => s.at >= fromMs);
    const hi = [...this.samples].reverse().find((s) => s.at <= toMs);
    if (!lo || !hi || hi.at <= lo.at) return null;
    const steps = stepEnds.filter((t) => t > lo.at && t <= hi.at).length;
    const pids = [...hi.byPid.keys()].filter((p) => lo.byPid.has(p));
    if (steps === 0 || pids.length === 0) return null;
    let cpu = 0;
    let queued = 0;
    for (const p of pids) {
      cpu += hi.byPid.get(p)![0] - lo.byPid.get(p)![0];
      queued += hi.byPid.get(p)![1] - lo.byPid.get(p)![1];
    }
    const perStep = (ns: number): number => ns / 1e6 / pids.length / steps;
    return { processes: pids.length, cpuMs: perStep(cpu), runQueueMs: perStep(queued), wallMs: hi.at - lo.at, steps };
  }

  private sample(): void {
    const byPid = new Map<number, [number, number]>();
    for (const pid of this.rootPids) for (const p of treeOf(pid).slice(this.skipRoots ? 1 : 0)) {
      const t = schedOf(p);
      if (t) byPid.set(p, t);
    }
    if (byPid.size > 0) this.samples.push({ at: Date.now(), byPid });
  }
}

/** pid and its descendants (/proc/PID/task/TID/children); just pid where that is unreadable. */
function treeOf(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    for (const tid of readDir(`/proc/${out[i]}/task`)) {
      const kids = readText(`/proc/${out[i]}/task/${tid}/children`);
      if (kids) for (const k of kids.trim().split(/\s+/).filter(Boolean)) out.push(Number(k));
    }
  }
  return out;
}

/** [ns on a CPU, ns waiting on a run queue] over a process's threads; null once it has exited. */
function schedOf(pid: number): [number, number] | null {
  const tids = readDir(`/proc/${pid}/task`);
  if (tids.length === 0) return null;
  let cpu = 0;
  let queued = 0;
  for (const tid of tids) {
    const fields = readText(`/proc/${pid}/task/${tid}/schedstat`)?.trim().split(/\s+/).map(Number);
    if (!fields || fields.length < 2) continue;
    cpu += fields[0];
    queued += fields[1];
  }
  return [cpu, queued];
}

function readDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}
