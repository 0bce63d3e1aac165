import type { EventRecord } from '../metrics/events.js';
import type { EvalLine, RunConfig, StepLine, parseMetricsLine } from '../metrics/reader.js';
import type { ResultFile } from '../metrics/result_file.js';
import { ClusterView, type ClusterStatus } from './cluster_view.js';
import { describeClusterEvent } from './cluster_events.js';
import { type GrpoSeries, addGrpo, emptyGrpoSeries, grpoSince } from './grpo_series.js';

/**
 * What the dashboard shows of one run, built from the lines of its metrics.jsonl and events.jsonl
 * as they arrive (in any order between ranks). Steps are grouped in buckets of BUCKET_STEPS: a
 * bucket becomes a point of every chart once each rank still running has reported its last step
 * (checked by settle(), after each read of the files), so the curves only grow forward. Everything here is measured per step by the ranks themselves.
 */
export const BUCKET_STEPS = 10;
/** Steps per rank behind the "recent" split and the straggler call. */
export const RECENT_STEPS = 50;
/** A rank this many buckets behind the others stops holding the charts back. */
const MAX_LAG_BUCKETS = 20;

export type MemberStatus = 'starting' | 'running' | 'finished' | 'failed' | 'lost';

export interface Member {
  rank: number;
  host: string | null;
  backend: string | null;
  pid: number | null;
  threads: number | null;
  /** What its node brings, from worker_joined.node: "2 cores · 23.5 GiB · no GPU", and the interfaces. */
  node: string | null;
  nodeDetail: string | null;
  /** Where it trains, from worker_joined.device: "cpu · native", "NVIDIA A100 · webgpu", "google swiftshader (software) · webgpu". */
  device: string | null;
  status: MemberStatus;
  error: string | null;
  /** Steps this rank has reported. */
  steps: number;
  /** When its last step ended (ms since the epoch). */
  lastTime: number | null;
}

/** Mean time per step over a rank's last RECENT_STEPS steps. */
export interface Split {
  rank: number;
  computeMs: number;
  commMs: number;
  waitMs: number;
  steps: number;
}

export interface Straggler {
  rank: number;
  computeMs: number;
  /** Median compute of the other ranks, and how long they wait per step. */
  othersComputeMs: number;
  othersWaitMs: number;
  /** computeMs / othersComputeMs. */
  ratio: number;
}

export interface EventView {
  time: number;
  rank: number | null;
  kind: string;
  text: string;
  level: 'info' | 'warn' | 'error';
}

/** Chart points; per-rank series are keyed by rank and aligned with `x` (null: no data). */
export interface Buckets {
  /** Steps done at the bucket's end. */
  x: number[];
  loss: Array<number | null>;
  samplesPerSec: Array<number | null>;
  /** Token tasks: the cluster's tokens/s (null: no token counts, e.g. images). */
  tokensPerSec: Array<number | null>;
  /** The mean learning rate of the bucket's steps. */
  lr: Array<number | null>;
  gradNorm: Array<number | null>;
  compute: Record<number, Array<number | null>>;
  comm: Record<number, Array<number | null>>;
  wait: Record<number, Array<number | null>>;
}

export interface Evals {
  x: number[];
  loss: number[];
  accuracy: Array<number | null>;
  /** Token tasks: exp(test loss); null otherwise. */
  perplexity: Array<number | null>;
}

/** The small parts of the state, sent whole on every update. */
export interface Status {
  label: string;
  dir: string | null;
  config: RunConfig | null;
  result: ResultFile | null;
  ended: boolean;
  members: Member[];
  recent: Split[];
  straggler: Straggler | null;
  errors: string[];
  startedAt: number | null;
  /** The run folder holds a trace.json (--trace). */
  trace: boolean;
  /** A coordinator's folder: its nodes and rounds (null for a training run). */
  cluster: ClusterStatus | null;
}

export type { GrpoSeries } from './grpo_series.js';

export interface Snapshot extends Status {
  buckets: Buckets;
  evals: Evals;
  grpo: GrpoSeries;
  events: EventView[];
}

interface Agg {
  n: number;
  samples: number;
  tokens: number;
  tokensN: number;
  lr: number;
  lrN: number;
  ms: number;
  compute: number;
  comm: number;
  wait: number;
  loss: number;
  lossN: number;
  grad: number;
  gradN: number;
  lastStep: number;
}

type Metric = ReturnType<typeof parseMetricsLine> | { kind: 'step'; rec: StepLine } | { kind: 'eval'; rec: EvalLine };

export class RunState {
  config: RunConfig | null = null;
  result: ResultFile | null = null;
  ended = false;
  trace = false;
  private readonly members = new Map<number, Member>();
  private readonly recentByRank = new Map<number, Array<[number, number, number]>>();
  private readonly pending = new Map<number, Map<number, Agg>>();
  private nextBucket = 0;
  private readonly buckets: Buckets = { x: [], loss: [], samplesPerSec: [], tokensPerSec: [], lr: [], gradNorm: [], compute: {}, comm: {}, wait: {} };
  private readonly evals: Evals = { x: [], loss: [], accuracy: [], perplexity: [] };
  private readonly grpo: GrpoSeries = emptyGrpoSeries();
  private readonly events: EventView[] = [];
  private readonly errors: string[] = [];
  private readonly cluster = new ClusterView();
  private startedAt: number | null = null;
  /** How much of each list the last delta() covered. */
  private sent = { buckets: 0, evals: 0, events: 0, grpo: 0, grpoEvals: 0 };

  constructor(readonly label: string, readonly dir: string | null) {}

  setConfig(c: RunConfig): void {
    this.config = c;
    const workers = typeof c.workers === 'number' ? c.workers : 1;
    for (let r = 0; r < workers; r++) this.member(r);
  }

  setResult(r: ResultFile): void {
    this.result = r;
    for (const m of this.members.values()) if (m.status === 'running' || m.status === 'starting') m.status = 'finished';
    this.finish();
  }

  /** No more lines will come: settle() draws what is left. */
  finish(): void {
    this.ended = true;
  }

  /** Draws the buckets that are complete (all of them once the run ended); call after adding lines. */
  settle(): void {
    this.emitBuckets(this.ended);
  }

  addError(message: string): void {
    if (!this.errors.includes(message) && this.errors.length < 20) this.errors.push(message);
  }

  addMetric(m: Metric): void {
    // A text model's sample (train --sample-every): shown in the event list, as it was written.
    if (m.kind === 'other' && m.rec.kind === 'sample') {
      this.events.push(sampleView(m.rec));
      return;
    }
    if (m.kind === 'other' && (m.rec.kind === 'grpo' || m.rec.kind === 'grpo_eval')) {
      this.startedAt ??= typeof m.rec.time === 'number' ? m.rec.time : null;
      addGrpo(this.grpo, m.rec);
      return;
    }
    if (m.kind === 'eval') {
      const e = m.rec;
      // Evaluations come from rank 0, in step order; keep the x axis sorted all the same.
      let i = this.evals.x.length;
      while (i > 0 && this.evals.x[i - 1] > e.step) i--;
      if (i < this.evals.x.length) {
        // A late one: rebuild from here on (rare; keeps the delta logic simple by resending all).
        this.sent.evals = Math.min(this.sent.evals, i);
      }
      this.evals.x.splice(i, 0, e.step);
      this.evals.loss.splice(i, 0, e.test_loss);
      this.evals.accuracy.splice(i, 0, e.test_accuracy);
      this.evals.perplexity.splice(i, 0, typeof e.test_perplexity === 'number' ? e.test_perplexity : null);
      return;
    }
    if (m.kind !== 'step') return;
    const s = m.rec;
    this.startedAt ??= s.time;
    const member = this.member(s.rank);
    member.steps = Math.max(member.steps, s.step + 1);
    member.lastTime = Math.max(member.lastTime ?? 0, s.time);
    if (member.status === 'starting') member.status = 'running';
    const recent = this.recentByRank.get(s.rank) ?? [];
    recent.push([s.compute_ms, s.comm_ms, s.wait_ms]);
    if (recent.length > RECENT_STEPS) recent.shift();
    this.recentByRank.set(s.rank, recent);

    const k = Math.floor(s.step / BUCKET_STEPS);
    if (k < this.nextBucket) return; // a rank that lagged too far behind; its bucket was drawn without it
    let bucket = this.pending.get(k);
    if (!bucket) this.pending.set(k, (bucket = new Map()));
    let a = bucket.get(s.rank);
    if (!a) bucket.set(s.rank, (a = { n: 0, samples: 0, tokens: 0, tokensN: 0, lr: 0, lrN: 0, ms: 0, compute: 0, comm: 0, wait: 0, loss: 0, lossN: 0, grad: 0, gradN: 0, lastStep: -1 }));
    a.n++;
    a.samples += s.samples;
    if (typeof s.tokens === 'number') {
      a.tokens += s.tokens;
      a.tokensN++;
    }
    if (typeof s.lr === 'number' && Number.isFinite(s.lr)) {
      a.lr += s.lr;
      a.lrN++;
    }
    a.ms += s.compute_ms + s.comm_ms + s.wait_ms;
    a.compute += s.compute_ms;
    a.comm += s.comm_ms;
    a.wait += s.wait_ms;
    if (typeof s.loss === 'number' && Number.isFinite(s.loss)) {
      a.loss += s.loss;
      a.lossN++;
    }
    if (typeof s.grad_norm === 'number') {
      a.grad += s.grad_norm;
      a.gradN++;
    }
    a.lastStep = Math.max(a.lastStep, s.step);
  }

  addEvent(e: EventRecord): void {
    const rank = typeof e.rank === 'number' ? e.rank : null;
    this.events.push(describeEvent(e));
    this.cluster.add(e);
    const str = (k: string): string | null => (typeof e[k] === 'string' ? (e[k] as string) : null);
    const num = (k: string): number | null => (typeof e[k] === 'number' ? (e[k] as number) : null);
    switch (e.kind) {
      case 'run_start': {
        this.startedAt = e.time;
        const workers = num('workers') ?? 0;
        for (let r = 0; r < workers; r++) this.member(r);
        break;
      }
      case 'run_end':
        if (e.status === 'ok') for (const m of this.members.values()) if (m.status === 'running') m.status = 'finished';
        this.finish();
        break;
      case 'worker_started':
        if (rank !== null) Object.assign(this.member(rank), { pid: num('pid') });
        break;
      case 'worker_joined':
        if (rank !== null) {
          const m = this.member(rank);
          Object.assign(m, { host: str('host'), backend: str('backend'), pid: num('pid'), threads: num('threads'), ...nodeOf(e.node), device: deviceOf(e.device) });
          if (m.status === 'starting') m.status = 'running';
        }
        break;
      case 'worker_finished':
        if (rank !== null) this.setStatus(rank, 'finished', null, true);
        break;
      case 'worker_lost':
        if (rank !== null) this.setStatus(rank, 'lost', str('error'), false);
        break;
      case 'worker_restarted':
        if (rank !== null) Object.assign(this.member(rank), { pid: num('pid'), status: 'starting', error: null });
        break;
      case 'membership':
        // An elastic run: whoever is in the new epoch runs, whoever left is lost.
        for (const id of Array.isArray(e.members) ? (e.members as unknown[]) : []) if (typeof id === 'number') Object.assign(this.member(id), { status: 'running', error: null });
        for (const id of Array.isArray(e.left) ? (e.left as unknown[]) : []) if (typeof id === 'number') this.setStatus(id, 'lost', `left membership epoch ${String(e.epoch)}`, false);
        break;
      case 'detection': {
        // The run monitors' verdicts (src/train/loop/monitors.ts): a fatal one stops the rank that saw it;
        // a lost peer is lost.
        const observer = num('observer');
        const ranks = Array.isArray(e.ranks) ? (e.ranks as unknown[]).filter((r): r is number => typeof r === 'number') : [];
        if (e.severity === 'fatal' && observer !== null) this.setStatus(observer, 'failed', str('detail'), true);
        if (e.rule === 'peer-lost') {
          for (const r of ranks) if (r !== observer) this.setStatus(r, 'lost', `connection lost (seen by rank ${observer})`, false, false);
        }
        break;
      }
      default:
        break;
    }
  }

  /** Everything so far (a page that just connected). */
  snapshot(): Snapshot {
    return { ...this.status(), buckets: this.buckets, evals: this.evals, grpo: this.grpo, events: this.events };
  }

  /** What was added since the last delta(), and the whole small state. */
  delta(): Status & { buckets: Buckets; evals: Evals & { from: number }; grpo: GrpoSeries; events: EventView[] } {
    const from = this.sent;
    const slice = <T>(a: T[]): T[] => a.slice(from.buckets);
    const perRank = (r: Record<number, Array<number | null>>): Record<number, Array<number | null>> =>
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, slice(v)]));
    const out = {
      ...this.status(),
      buckets: {
        x: slice(this.buckets.x), loss: slice(this.buckets.loss), samplesPerSec: slice(this.buckets.samplesPerSec),
        tokensPerSec: slice(this.buckets.tokensPerSec), lr: slice(this.buckets.lr), gradNorm: slice(this.buckets.gradNorm),
        compute: perRank(this.buckets.compute), comm: perRank(this.buckets.comm), wait: perRank(this.buckets.wait),
      },
      evals: {
        from: from.evals, x: this.evals.x.slice(from.evals), loss: this.evals.loss.slice(from.evals), accuracy: this.evals.accuracy.slice(from.evals),
        perplexity: this.evals.perplexity.slice(from.evals),
      },
      grpo: grpoSince(this.grpo, from.grpo, from.grpoEvals),
      events: this.events.slice(from.events),
    };
    this.sent = { buckets: this.buckets.x.length, evals: this.evals.x.length, events: this.events.length, grpo: this.grpo.x.length, grpoEvals: this.grpo.evalX.length };
    return out;
  }

  status(): Status {
    const members = [...this.members.values()].sort((a, b) => a.rank - b.rank);
    const recent = [...this.recentByRank.entries()].sort((a, b) => a[0] - b[0]).map(([rank, steps]) => {
      const mean = (i: number): number => steps.reduce((s, t) => s + t[i], 0) / steps.length;
      return { rank, computeMs: mean(0), commMs: mean(1), waitMs: mean(2), steps: steps.length };
    });
    return {
      label: this.label, dir: this.dir, config: this.config, result: this.result, ended: this.ended, members, recent,
      straggler: straggler(recent), errors: [...this.errors], startedAt: this.startedAt, trace: this.trace,
      cluster: this.cluster.status(),
    };
  }

  private member(rank: number): Member {
    let m = this.members.get(rank);
    if (!m) {
      m = { rank, host: null, backend: null, pid: null, threads: null, node: null, nodeDetail: null, device: null, status: 'starting', error: null, steps: 0, lastTime: null };
      this.members.set(rank, m);
    }
    return m;
  }

  /**
   * `own`: the rank said so itself, which outranks what others saw (a failed rank also exits
   * non-zero). `replaceError` false: a reason already known (the launcher's "killed by SIGKILL")
   * stays.
   */
  private setStatus(rank: number, status: MemberStatus, error: string | null, own: boolean, replaceError = true): void {
    const m = this.member(rank);
    if (m.status === 'finished' || (!own && m.status === 'failed')) return;
    m.status = status;
    if (replaceError || m.error === null) m.error = error ?? m.error;
  }

  private emitBuckets(all: boolean): void {
    const active = [...this.members.values()].filter((m) => m.status === 'starting' || m.status === 'running').map((m) => m.rank);
    const reached = (rank: number): number => this.members.get(rank)!.steps - 1;
    for (;;) {
      const k = this.nextBucket;
      const lastKey = Math.max(-1, ...this.pending.keys());
      if (lastKey < k) return;
      const end = (k + 1) * BUCKET_STEPS - 1;
      const lead = Math.max(...[...this.members.values()].map((m) => m.steps - 1));
      const complete = all || active.every((r) => reached(r) >= end) || lead >= end + MAX_LAG_BUCKETS * BUCKET_STEPS;
      if (!complete) return;
      const bucket = this.pending.get(k);
      this.pending.delete(k);
      this.nextBucket++;
      if (bucket && bucket.size > 0) this.drawBucket(bucket);
    }
  }

  private drawBucket(bucket: Map<number, Agg>): void {
    const b = this.buckets;
    let samples = 0;
    let tokens = 0;
    let tokensN = 0;
    let lr = 0;
    let lrN = 0;
    let ms = 0;
    let loss = 0;
    let lossN = 0;
    let grad = 0;
    let gradN = 0;
    let last = 0;
    for (const a of bucket.values()) {
      samples += a.samples;
      tokens += a.tokens;
      tokensN += a.tokensN;
      lr += a.lr;
      lrN += a.lrN;
      ms = Math.max(ms, a.ms);
      loss += a.loss;
      lossN += a.lossN;
      grad += a.grad;
      gradN += a.gradN;
      last = Math.max(last, a.lastStep);
    }
    const at = b.x.length;
    b.x.push(last + 1);
    b.loss.push(lossN > 0 ? loss / lossN : null);
    // Ranks step together: the bucket took as long as its slowest rank.
    b.samplesPerSec.push(ms > 0 ? (samples * 1000) / ms : null);
    b.tokensPerSec.push(ms > 0 && tokensN > 0 ? (tokens * 1000) / ms : null);
    b.lr.push(lrN > 0 ? lr / lrN : null);
    b.gradNorm.push(gradN > 0 ? grad / gradN : null);
    for (const rank of this.members.keys()) {
      for (const [series, key] of [[b.compute, 'compute'], [b.comm, 'comm'], [b.wait, 'wait']] as const) {
        series[rank] ??= new Array<number | null>(at).fill(null);
        const a = bucket.get(rank);
        series[rank].push(a ? a[key] / a.n : null);
      }
    }
  }
}

/** The rank whose recent compute per step is largest, when there are peers to compare with. */
function straggler(recent: Split[]): Straggler | null {
  const ranks = recent.filter((s) => s.steps >= 3);
  if (ranks.length < 2) return null;
  const slow = ranks.reduce((a, b) => (b.computeMs > a.computeMs ? b : a));
  const others = ranks.filter((s) => s !== slow);
  const sorted = others.map((s) => s.computeMs).sort((a, b) => a - b);
  const mid = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  const othersWaitMs = others.reduce((s, o) => s + o.waitMs, 0) / others.length;
  return { rank: slow.rank, computeMs: slow.computeMs, othersComputeMs: mid, othersWaitMs, ratio: mid > 0 ? slow.computeMs / mid : 1 };
}

/** One line of the event log, in words. */
/** A metrics.jsonl "sample" line as the event list shows it: the step, then the prompt and what the model wrote. */
export function sampleView(r: Record<string, unknown>): EventView {
  const text = `${typeof r.prompt === 'string' ? r.prompt : ''}${typeof r.text === 'string' ? r.text : ''}`;
  return { time: typeof r.time === 'number' ? r.time : 0, rank: 0, kind: 'sample', text: `step ${String(r.step ?? '?')} sample: ${text}`, level: 'info' };
}

export function describeEvent(e: EventRecord): EventView {
  const rank = typeof e.rank === 'number' ? e.rank : null;
  const f = (k: string): string => String(e[k] ?? '?');
  const view = (text: string, level: EventView['level'] = 'info'): EventView => ({ time: e.time, rank, kind: e.kind, text, level });
  switch (e.kind) {
    case 'run_start':
      return view(`run ${f('name')} started: ${f('workers')} worker${e.workers === 1 ? '' : 's'}, from ${f('host')} (pid ${f('pid')})`);
    case 'run_end':
      return e.status === 'ok' ? view('run finished') : view(`run failed${e.error ? `: ${f('error')}` : ''}`, 'error');
    case 'worker_started':
      return view(`rank ${rank} started (pid ${f('pid')})`);
    case 'worker_joined': {
      const device = deviceOf(e.device);
      return view(`rank ${rank} joined from ${f('host')}${device ? ` on ${device}` : ''} (${f('backend')}, ${f('threads')} thread${e.threads === 1 ? '' : 's'}, pid ${f('pid')})`);
    }
    case 'worker_finished':
      return view(`rank ${rank} finished after ${f('steps')} steps`);
    case 'worker_lost':
      return view(`rank ${rank} lost: ${f('error')}`, 'error');
    case 'detection': {
      const who = typeof e.observer === 'number' ? `rank ${e.observer}: ` : '';
      return { ...view(`${who}${f('rule')}: ${f('detail')}`, e.severity === 'fatal' ? 'error' : 'warn'), rank: typeof e.observer === 'number' ? e.observer : null };
    }
    case 'fault_injected':
      return view(`fault injected on rank ${rank} at step ${f('step')}: ${f('detail')}`, 'warn');
    case 'eval': {
      const acc = typeof e.test_accuracy === 'number' ? `, accuracy ${(e.test_accuracy * 100).toFixed(2)}%` : '';
      const ppl = typeof e.test_perplexity === 'number' ? `, perplexity ${e.test_perplexity.toFixed(2)}` : '';
      return view(`step ${f('step')}: test loss ${Number(e.test_loss).toFixed(4)}${acc}${ppl}`);
    }
    case 'model_saved':
      return view(`model saved to ${f('file')} (step ${f('step')})`);
    case 'checkpoint':
      return view(`checkpoint at step ${f('step')}: ${f('file')}`);
    case 'resumed':
      return view(`resumed from ${f('file')} after step ${f('step')}`);
    case 'checkpoint_refused':
      return view(`checkpoint refused: ${f('error')}`, 'warn');
    case 'membership': {
      const ids = (k: string): string => (Array.isArray(e[k]) ? (e[k] as unknown[]).join(', ') : '?');
      const change = [(e.left as unknown[] | undefined)?.length ? `left: ${ids('left')}` : '', (e.joined as unknown[] | undefined)?.length ? `joined: ${ids('joined')}` : '']
        .filter(Boolean).join('; ');
      const lost = Number(e.steps_lost) > 0 ? `, ${f('steps_lost')} step(s) rolled back` : '';
      return view(`membership epoch ${f('epoch')}: workers ${ids('members')}${change ? ` (${change})` : ''}, from step ${f('step')}${lost} — ${f('reason')}`, change ? 'warn' : 'info');
    }
    case 'worker_restarted':
      return view(`rank ${rank} restarted (pid ${f('pid')}, restart ${f('restarts')})`, 'warn');
    case 'rebalance': {
      const pct = (v: unknown): string => (Array.isArray(v) ? v.map((x) => `${(Number(x) * 100).toFixed(1)}%`).join(' / ') : '?');
      return view(`step ${f('step')}: ${f('policy')} rebalanced shares ${pct(e.old_shares)} → ${pct(e.shares)} (${f('reason')})`);
    }
    default: {
      const cluster = describeClusterEvent(e);
      if (cluster) return view(cluster.text, cluster.level);
      const { schema: _s, schema_version: _sv, v: _v, time: _t, kind: _k, rank: _r, ...rest } = e;
      return view(`${e.kind} ${JSON.stringify(rest)}`);
    }
  }
}

/** The member table's node cell from a worker_joined `node` object (absent or malformed: nothing). */
function nodeOf(v: unknown): { node: string | null; nodeDetail: string | null } {
  if (typeof v !== 'object' || v === null) return { node: null, nodeDetail: null };
  const n = v as Record<string, unknown>;
  const gpus = Array.isArray(n.gpus) ? n.gpus.map(String) : [];
  const node = `${Number(n.cores)} cores · ${Number(n.memory_gib)} GiB · ${gpus.length > 0 ? gpus.join(', ') : 'no GPU'}`;
  const ifaces = Array.isArray(n.interfaces) ? n.interfaces.map(String) : [];
  return { node, nodeDetail: [String(n.cpu ?? ''), ...ifaces].filter(Boolean).join('\n') };
}

/** The member table's device cell from a worker_joined `device` object (absent or malformed: nothing). */
export function deviceOf(v: unknown): string | null {
  if (typeof v !== 'object' || v === null) return null;
  const d = v as Record<string, unknown>;
  if (typeof d.type !== 'string' || typeof d.backend !== 'string') return null;
  // The summary names every device (the cpu 'cpu', a GPU its adapter: tensor/device_summary.ts).
  const where = `${typeof d.name === 'string' ? d.name : d.type}${d.software === true ? ' (software)' : ''}`;
  return `${where} · ${d.backend}`;
}
