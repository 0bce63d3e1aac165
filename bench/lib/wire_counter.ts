import { type ChildProcess, spawn } from 'node:child_process';

/**
 * Bytes on the wire, counted where they are sent: a small sampler inside a network namespace reads
 * the interface's transmit counter (/sys/class/net/DEV/statistics/tx_bytes: every frame that left,
 * headers included) every few ms with a wall-clock time, so the bytes between two step ends of a
 * run in that namespace can be read off afterwards (bytesBetween).
 */
export interface CounterSample { ms: number; bytes: number }

export class WireCounter {
  readonly samples: CounterSample[] = [];
  private readonly child: ChildProcess;

  constructor(ns: string, dev: string, intervalMs = 10) {
    if (!/^[\w.-]+$/.test(dev)) throw new Error(`wire counter: bad interface name ${dev}`);
    const script = `const fs=require('fs');const f='/sys/class/net/${dev}/statistics/tx_bytes';` +
      `const t=()=>process.stdout.write(Date.now()+' '+fs.readFileSync(f,'utf8').trim()+'\\n');t();setInterval(t,${intervalMs});`;
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    let rest = '';
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      const lines = (rest + s).split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) {
        const [ms, bytes] = l.split(' ').map(Number);
        if (Number.isFinite(ms) && Number.isFinite(bytes)) this.samples.push({ ms, bytes });
      }
    });
  }

  stop(): CounterSample[] {
    this.child.kill('SIGTERM');
    return this.samples;
  }
}

/** The counter at time `ms`: interpolated between the samples around it (null outside them). */
export function counterAt(samples: readonly CounterSample[], ms: number): number | null {
  if (!samples.length || ms < samples[0].ms || ms > samples[samples.length - 1].ms) return null;
  let i = 1;
  while (i < samples.length && samples[i].ms < ms) i++;
  if (i >= samples.length) return samples[samples.length - 1].bytes;
  const a = samples[i - 1];
  const b = samples[i];
  return b.ms === a.ms ? b.bytes : a.bytes + ((b.bytes - a.bytes) * (ms - a.ms)) / (b.ms - a.ms);
}

/** Bytes sent between two times (null when either lies outside the samples). */
export function bytesBetween(samples: readonly CounterSample[], fromMs: number, toMs: number): number | null {
  const a = counterAt(samples, fromMs);
  const b = counterAt(samples, toMs);
  return a === null || b === null ? null : b - a;
}
