import { readFileSync } from 'node:fs';

/**
 * Per-process peak resident memory, read where it happens: the kernel's high-water mark (VmHWM in
 * /proc/<pid>/status) of every process under the given roots (the launcher's workers, found through
 * /proc/<pid>/task/<pid>/children), polled until stop(). VmHWM only grows, so the last reading of
 * each process is its peak up to then; a process's last ~interval before it exits can be missed.
 * `program` (/proc/<pid>/comm) keeps only the processes that run it: a launcher's workers are
 * `node`, and a worker's `lspci` probe of a few MB caught alive by the poll is not a rank.
 */
export class RssSampler {
  private readonly peaks = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;

  /** `includeRoots`: count the roots themselves (torch ranks), or only their descendants (a launcher's workers). */
  constructor(
    private readonly roots: number[],
    private readonly includeRoots: boolean,
    intervalMs = 100,
    private readonly program?: string,
  ) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.sample();
  }

  add(pid: number): void {
    this.roots.push(pid);
    this.sample();
  }

  private sample(): void {
    for (const root of this.roots) {
      for (const pid of this.includeRoots ? [root, ...descendants(root)] : descendants(root)) {
        if (this.program !== undefined && programOf(pid) !== this.program) continue;
        const hwm = vmHwmBytes(pid);
        if (hwm !== null) this.peaks.set(pid, Math.max(this.peaks.get(pid) ?? 0, hwm));
      }
    }
  }

  /** Every process seen so far (to end a run's whole tree: a launcher's workers outlive a SIGKILL of the launcher). */
  seen(): number[] {
    return [...this.peaks.keys()];
  }

  /** Stops polling; each process's peak, in pid order (ranks start in rank order). */
  stop(): number[] {
    this.sample();
    clearInterval(this.timer);
    return [...this.peaks.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
  }
}

function descendants(pid: number): number[] {
  let kids: number[];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return kids.flatMap((k) => [k, ...descendants(k)]);
}

/** A live process's program name (/proc/<pid>/comm: `node`, `python`), or null once it is gone. */
function programOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** VmHWM of a live process in bytes, or null (gone, or a kernel thread). */
export function vmHwmBytes(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
