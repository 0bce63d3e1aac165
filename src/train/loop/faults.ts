/**
 * Fault injection: a debug knob that makes one worker misbehave on purpose, inside the real
 * training loop, so the monitors that guard every run (monitors.ts) can be shown to catch it.
 *
 * A fault spec is `kind[:key=value]...`, given with `--fault SPEC` (repeatable) or in the
 * environment as `SMOLCLUSTER_FAULT=SPEC[,SPEC...]` (which the local launcher's workers inherit):
 *
 *   slow:rank=1:ms=50[:step=0][:steps=N]       rank 1 sleeps 50 ms after each backward (a straggler)
 *   corrupt:rank=1:kind=nan[:step=20][:steps=1] one NaN written into rank 1's gradient
 *   corrupt:rank=1:kind=scale:factor=1000        rank 1's gradient multiplied by 1000
 *   corrupt:rank=1:kind=noise:std=1              Gaussian noise added to rank 1's gradient
 *   hang:rank=1:step=30[:ms=M]                  rank 1 blocks (forever, or M ms) with its sockets open
 *   kill:rank=1:step=30                          rank 1 SIGKILLs itself
 *   skip-allreduce[:rank=all][:step=0]           the rank(s) keep their local gradient instead of the
 *                                                average (collectives still run, so nothing hangs:
 *                                                gradient synchronisation is silently broken)
 *
 * `rank` may be a rank or `all`; `step` is the first 0-based step the fault acts on (default 0) and
 * `steps` how many steps it lasts (default: corrupt 1, the others for the rest of the run).
 * Every fault records a `fault_injected` event (events.jsonl) the first time it acts, which is how
 * `fault-test` measures time to detection. Faults act after backward and before communication, so
 * a slow rank's sleep counts as its compute time and a corrupted gradient is what it would send.
 */
import { ConfigError } from '../../util/errors.js';
import { Rng } from '../../util/rng.js';
import type { MonitorLog } from './monitors.js';

export const FAULT_ENV = 'SMOLCLUSTER_FAULT';

export type FaultKind = 'slow' | 'corrupt' | 'hang' | 'kill' | 'skip-allreduce';
export type Corruption = 'nan' | 'scale' | 'noise';

export interface FaultSpec {
  kind: FaultKind;
  /** The rank that misbehaves, or every rank. */
  rank: number | 'all';
  /** First step the fault acts on. */
  step: number;
  /** Steps it lasts (Infinity: to the end of the run). */
  steps: number;
  /** slow: sleep per step; hang: how long (Infinity: forever). */
  ms: number;
  corruption: Corruption;
  /** corrupt scale: the factor. */
  factor: number;
  /** corrupt noise: standard deviation. */
  std: number;
  /** The spec as written. */
  text: string;
}

const KINDS: readonly FaultKind[] = ['slow', 'corrupt', 'hang', 'kill', 'skip-allreduce'];
const KEYS: Record<FaultKind, readonly string[]> = {
  slow: ['rank', 'ms', 'step', 'steps'],
  corrupt: ['rank', 'kind', 'step', 'steps', 'factor', 'std'],
  hang: ['rank', 'step', 'ms'],
  kill: ['rank', 'step'],
  'skip-allreduce': ['rank', 'step', 'steps'],
};

/** Parses one spec; `source` names where it came from in errors (`--fault` or the variable). */
export function parseFault(text: string, source = '--fault'): FaultSpec {
  const [kind, ...fields] = text.trim().split(':');
  const bad = (why: string): ConfigError => new ConfigError(source === '--fault' ? 'command line' : 'environment', source, `"${text}": ${why}`);
  if (!(KINDS as readonly string[]).includes(kind)) throw bad(`unknown fault "${kind}" (expected one of ${KINDS.join(', ')})`);
  const k = kind as FaultKind;
  const values = new Map<string, string>();
  for (const f of fields) {
    const eq = f.indexOf('=');
    const key = eq > 0 ? f.slice(0, eq) : f;
    if (eq <= 0 || !KEYS[k].includes(key)) throw bad(`"${f}" is not one of ${KEYS[k].map((x) => `${x}=`).join(', ')}`);
    values.set(key, f.slice(eq + 1));
  }
  const num = (key: string, fallback: number, min: number, integer = true): number => {
    const v = values.get(key);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (v === '' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
      throw bad(`${key} must be ${integer ? 'an integer' : 'a number'} ≥ ${min}, got "${v}"`);
    }
    return n;
  };
  const rankText = values.get('rank');
  if (rankText === undefined && k !== 'skip-allreduce') throw bad('rank= is required (a rank, or all)');
  const rank = rankText === undefined || rankText === 'all' ? 'all' : num('rank', 0, 0);
  const corruption = (values.get('kind') ?? 'nan') as Corruption;
  if (!['nan', 'scale', 'noise'].includes(corruption)) throw bad(`kind must be nan, scale or noise, got "${corruption}"`);
  if (k === 'corrupt' && !values.has('kind')) throw bad('kind= is required (nan, scale or noise)');
  if (k === 'slow' && !values.has('ms')) throw bad('ms= is required (the sleep per step)');
  return {
    kind: k,
    rank,
    step: num('step', 0, 0),
    steps: num('steps', k === 'corrupt' ? 1 : Infinity, 1),
    ms: num('ms', Infinity, 0, false),
    corruption,
    factor: num('factor', 1000, 0, false),
    std: num('std', 1, 0, false),
    text,
  };
}

/** The faults of the command line and of SMOLCLUSTER_FAULT (comma-separated specs). */
export function parseFaults(flags: readonly string[] = [], env: string | undefined = process.env[FAULT_ENV]): FaultSpec[] {
  const fromEnv = (env ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  return [...flags.map((f) => parseFault(f)), ...fromEnv.map((f) => parseFault(f, FAULT_ENV))];
}

/** Blocks this thread (timers, sockets and all) for `ms` milliseconds, or forever. */
function block(ms: number): void {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  if (Number.isFinite(ms)) Atomics.wait(cell, 0, 0, ms);
  else for (;;) Atomics.wait(cell, 0, 0);
}

/**
 * The faults that concern one rank, applied at the two points of a step the loop offers. With no
 * faults every call is a cheap no-op.
 */
export class FaultInjector {
  private readonly mine: FaultSpec[];
  private readonly announced = new Set<FaultSpec>();
  private readonly rng: Rng;
  private saved: Float32Array | null = null;

  constructor(specs: readonly FaultSpec[], readonly rank: number, worldSize: number, private readonly events: MonitorLog | null = null) {
    for (const s of specs) {
      if (s.rank !== 'all' && s.rank >= worldSize) {
        throw new ConfigError('command line', '--fault', `"${s.text}": rank ${s.rank} is not in a cluster of ${worldSize}`);
      }
    }
    this.mine = specs.filter((s) => s.rank === 'all' || s.rank === rank);
    this.rng = Rng.derive(0x5eed, rank);
  }

  get enabled(): boolean {
    return this.mine.length > 0;
  }

  /** After backward, before the strategy communicates: sleep, corrupt, hang or die. */
  beforeCommunication(step: number, grad: Float32Array): void {
    for (const f of this.mine) {
      if (!this.acts(f, step)) continue;
      switch (f.kind) {
        case 'slow':
          this.announce(f, step, `sleeps ${f.ms} ms per step`);
          block(f.ms);
          break;
        case 'corrupt':
          this.announce(f, step, this.corrupt(f, grad));
          break;
        case 'hang':
          this.announce(f, step, Number.isFinite(f.ms) ? `blocks for ${f.ms} ms` : 'blocks forever, sockets open');
          block(f.ms);
          break;
        case 'kill':
          this.announce(f, step, 'SIGKILLs itself');
          process.kill(process.pid, 'SIGKILL');
          block(Infinity); // the signal is asynchronous: never run on
          break;
        case 'skip-allreduce':
          this.announce(f, step, 'keeps its local gradient instead of the average');
          this.saved = grad.slice();
          break;
      }
    }
  }

  /** After the strategy combined the gradients (skip-allreduce puts the local gradient back). */
  afterCommunication(_step: number, grad: Float32Array): void {
    if (this.saved) {
      grad.set(this.saved);
      this.saved = null;
    }
  }

  private acts(f: FaultSpec, step: number): boolean {
    return step >= f.step && step < f.step + f.steps;
  }

  private corrupt(f: FaultSpec, grad: Float32Array): string {
    switch (f.corruption) {
      case 'nan': {
        const i = this.rng.int(grad.length);
        grad[i] = NaN;
        return `gradient element ${i} set to NaN`;
      }
      case 'scale':
        for (let i = 0; i < grad.length; i++) grad[i] *= f.factor;
        return `gradient scaled by ${f.factor}`;
      case 'noise':
        for (let i = 0; i < grad.length; i++) grad[i] += f.std * this.rng.normal();
        return `Gaussian noise (std ${f.std}) added to the gradient`;
    }
  }

  private announce(f: FaultSpec, step: number, detail: string): void {
    if (this.announced.has(f)) return;
    this.announced.add(f);
    this.events?.injected({ fault: f.kind, spec: f.text, rank: this.rank, step, detail });
  }
}
