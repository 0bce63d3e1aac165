// The smolcluster dashboard page: one column per run, fed by the server's event stream
// (/api/runs/<id>/stream: "init" with everything so far, "update" with what is new, "end").
// Plain browser JavaScript; charts by uPlot (served from node_modules). Text goes in via
// textContent only.
'use strict';

const RANK_COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#be185d', '#4d7c0f'];
const rankColor = (r) => RANK_COLORS[r % RANK_COLORS.length];

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'style') e.style.cssText = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const fmt = {
  ms: (x) => (x == null ? '–' : x < 10 ? x.toFixed(2) : x.toFixed(1)),
  num: (x, d = 4) => (x == null || !Number.isFinite(x) ? '–' : x.toFixed(d)),
  pct: (x) => (x == null ? '–' : `${(x * 100).toFixed(2)}%`),
  int: (x) => (x == null ? '–' : Math.round(x).toLocaleString('en')),
  clock: (t) => new Date(t).toLocaleTimeString('en-GB', { hour12: false }),
  secs: (s) => (s < 90 ? `${s.toFixed(1)} s` : s < 5400 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(2)} h`),
};

class RunView {
  constructor(root, info) {
    this.id = info.id;
    this.node = document.getElementById('run-template').content.firstElementChild.cloneNode(true);
    this.node.dataset.run = String(info.id);
    this.node.querySelector('.name').textContent = info.label;
    root.append(this.node);
    this.charts = {};
    this.status = null;
    this.data = null;
    this.live = true;
    this.connect();
  }

  connect() {
    const es = new EventSource(`/api/runs/${this.id}/stream`);
    es.addEventListener('init', (e) => this.init(JSON.parse(e.data)));
    es.addEventListener('update', (e) => this.update(JSON.parse(e.data)));
    es.addEventListener('end', () => {
      es.close();
      this.live = false;
      this.render();
    });
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        this.live = false;
        this.render();
      }
    };
  }

  init(s) {
    this.data = { buckets: s.buckets, evals: s.evals, grpo: s.grpo, events: s.events };
    this.status = s;
    this.render();
  }

  update(d) {
    if (!this.data) return;
    const b = this.data.buckets;
    const n = b.x.length;
    for (const k of ['x', 'loss', 'samplesPerSec', 'tokensPerSec', 'lr', 'gradNorm']) b[k].push(...d.buckets[k]);
    for (const k of ['compute', 'comm', 'wait']) {
      for (const [rank, values] of Object.entries(d.buckets[k])) {
        // A rank first seen now: no points before.
        if (!b[k][rank]) b[k][rank] = new Array(n).fill(null);
        b[k][rank].push(...values);
      }
    }
    const e = this.data.evals;
    for (const k of ['x', 'loss', 'accuracy', 'perplexity']) e[k].splice(d.evals.from, e[k].length - d.evals.from, ...d.evals[k]);
    for (const [k, values] of Object.entries(d.grpo)) this.data.grpo[k].push(...values);
    this.data.events.push(...d.events);
    this.status = d;
    this.render();
  }

  render() {
    if (!this.status) return;
    this.renderHead();
    this.renderStraggler();
    this.renderWorkers();
    this.renderCluster();
    this.renderEvents();
    this.renderCharts();
  }

  runState() {
    const s = this.status;
    if (s.result) return 'finished';
    const bad = s.members.some((m) => m.status === 'failed' || m.status === 'lost');
    if (bad && (s.ended || !this.live)) return 'failed';
    if (s.ended) return 'ended';
    return this.live ? 'running' : 'stopped';
  }

  renderHead() {
    const s = this.status;
    const state = this.runState();
    const badge = this.node.querySelector('[data-badge]');
    badge.textContent = state;
    badge.className = `badge ${state}`;
    this.node.dataset.state = state;
    const trace = this.node.querySelector('.trace');
    trace.hidden = !s.trace;
    trace.href = `/api/runs/${this.id}/trace.json`;

    const c = s.config || {};
    const r = s.result;
    const b = this.data.buckets;
    const e = this.data.evals;
    const steps = Math.max(0, ...s.members.map((m) => m.steps));
    const lastTime = Math.max(0, ...s.members.map((m) => m.lastTime || 0));
    const elapsed = r ? r.wall_seconds : s.startedAt ? ((this.live && !s.ended ? Date.now() : lastTime) - s.startedAt) / 1000 : null;
    const items = this.data.grpo.x.length > 0 ? this.grpoHead(c) : [
      ['model', r ? r.model : c.model ? `${c.model}${c.hidden ? ` ${[].concat(c.hidden).join('-')}` : ''}` : '–'],
      ['dataset', c.dataset ?? '–'],
      ['workers', c.workers ?? s.members.length],
      ['strategy', c.strategy ?? '–'],
      ['steps', fmt.int(r ? r.steps : steps)],
      ['loss', fmt.num(r ? r.final_loss : lastOf(b.loss))],
      ['test accuracy', fmt.pct(r ? r.test_accuracy : lastOf(e.accuracy))],
      // Token tasks (language-model, masked-lm): exp(test loss), tokens/s and, once the run has measured it, MFU.
      ...(isTokenRun(b) ? [['test perplexity', fmt.num(r ? r.test_perplexity : lastOf(e.perplexity))]] : []),
      ['samples/s', fmt.int(r ? r.samples_per_sec : lastOf(b.samplesPerSec))],
      ...(isTokenRun(b) ? [['tokens/s', fmt.int(r ? r.tokens_per_sec : lastOf(b.tokensPerSec))]] : []),
      ...(r && r.mfu ? [['MFU', fmt.pct(r.mfu.value)]] : []),
      ['elapsed', elapsed == null ? '–' : fmt.secs(Math.max(0, elapsed))],
    ];
    const dl = this.node.querySelector('.summary');
    dl.replaceChildren(...items.map(([k, v]) => el('div', {}, el('dt', {}, k), el('dd', {}, v))));

    const errors = this.node.querySelector('.errors');
    errors.hidden = s.errors.length === 0;
    errors.textContent = s.errors.join('\n');
  }

  renderStraggler() {
    const box = this.node.querySelector('.straggler');
    const st = this.status.straggler;
    box.hidden = !st;
    if (!st) return;
    const balanced = !isStraggler(st);
    box.classList.toggle('balanced', balanced);
    box.dataset.rank = String(st.rank);
    box.textContent = balanced
      ? `Balanced: rank ${st.rank} is the slowest, computing ${fmt.ms(st.computeMs)} ms per step; the others ${fmt.ms(st.othersComputeMs)} ms.`
      : `Straggler: rank ${st.rank} computes ${fmt.ms(st.computeMs)} ms per step, ${st.ratio.toFixed(2)}× the others (${fmt.ms(st.othersComputeMs)} ms); they wait ${fmt.ms(st.othersWaitMs)} ms per step.`;
  }

  renderWorkers() {
    const s = this.status;
    const split = new Map(s.recent.map((x) => [x.rank, x]));
    const widest = Math.max(1e-9, ...s.recent.map((x) => x.computeMs + x.commMs + x.waitMs));
    const stragglerRank = s.straggler && isStraggler(s.straggler) ? s.straggler.rank : -1;
    const rows = s.members.map((m) => {
      const x = split.get(m.rank);
      const bar = x
        ? el('div', { class: 'split-cell' },
          el('div', { class: 'split', title: `compute ${fmt.ms(x.computeMs)} ms, communication ${fmt.ms(x.commMs)} ms, wait ${fmt.ms(x.waitMs)} ms (mean of ${x.steps} steps)` },
            el('span', { class: 'c', style: `width:${(100 * x.computeMs) / widest}%` }),
            el('span', { class: 'm', style: `width:${(100 * x.commMs) / widest}%` }),
            el('span', { class: 'w', style: `width:${(100 * x.waitMs) / widest}%` })),
          el('small', {}, `${fmt.ms(x.computeMs)} / ${fmt.ms(x.commMs)} / ${fmt.ms(x.waitMs)} ms`))
        : '–';
      const status = el('span', { class: `status ${m.status}` }, m.status);
      if (m.error && m.status !== 'finished') status.append(el('span', { class: 'why' }, m.error));
      const row = el('tr', { 'data-rank': String(m.rank), 'data-status': m.status, class: m.rank === stragglerRank ? 'straggler-row' : '' },
        el('td', {}, m.rank), el('td', {}, m.host ?? '–'), el('td', { class: 'node', title: m.nodeDetail ?? '' }, m.node ?? '–'), el('td', { class: 'backend', title: m.backend ?? '' }, m.backend ?? '–'), el('td', { class: 'device' }, m.device ?? '–'), el('td', {}, m.pid ?? '–'),
        el('td', {}, status), el('td', {}, fmt.int(m.steps)), el('td', {}, bar));
      return row;
    });
    this.node.querySelector('table.workers tbody').replaceChildren(...rows);
  }

  /** A coordinator's folder: node states and the rounds of its jobs. */
  renderCluster() {
    const c = this.status.cluster;
    const box = this.node.querySelector('.cluster');
    box.hidden = !c;
    for (const sel of ['.summary', '.charts', '.workers-title', '.workers-wrap']) this.node.querySelector(sel).hidden = !!c;
    if (!c) return;
    box.querySelector('table.nodes tbody').replaceChildren(...c.nodes.map((n) =>
      el('tr', { 'data-node': n.id, 'data-state': n.state }, el('td', {}, n.id), el('td', {}, el('span', { class: `status ${n.state}` }, n.state)),
        el('td', { class: 'device' }, n.device ?? '–'), el('td', {}, fmt.int(n.tasksDone)), el('td', {}, n.note ?? ''))));
    box.querySelector('table.rounds tbody').replaceChildren(...c.rounds.slice().reverse().map((r) =>
      el('tr', {}, el('td', {}, r.job), el('td', {}, r.round), el('td', {}, fmt.num(r.validationError)), el('td', {}, fmt.num(r.trainError)), el('td', {}, fmt.ms(r.ms)))));
    box.querySelector('table.tasks tbody').replaceChildren(...c.tasks.slice(-100).reverse().map((t) =>
      el('tr', { 'data-node': t.node }, el('td', {}, t.job), el('td', {}, t.round), el('td', {}, t.task), el('td', {}, t.node), el('td', {}, t.device),
        el('td', {}, fmt.ms(t.ms)), el('td', {}, t.attempt))));
    this.renderTimelines(box.querySelector('.timelines'), c);
    this.renderRoundsChart(c.rounds);
  }

  /** One bar per node from the coordinator's start to now: a span per state it was in. */
  renderTimelines(host, c) {
    const end = Math.max(Date.now(), ...c.nodes.flatMap((n) => n.history.map((h) => h.time)));
    const span = Math.max(1, end - c.startedAt);
    host.replaceChildren(...c.nodes.map((n) => {
      const spans = n.history.map((h, i) => {
        const until = i + 1 < n.history.length ? n.history[i + 1].time : end;
        const from = Math.max(h.time, c.startedAt);
        return el('span', {
          class: h.state, 'data-state': h.state, title: `${h.state} ${fmt.clock(from)}–${fmt.clock(until)} (${fmt.secs((until - from) / 1000)})`,
          style: `left:${(100 * (from - c.startedAt)) / span}%;width:${Math.max(0.2, (100 * (until - from)) / span)}%`,
        });
      });
      return el('div', { class: 'timeline', 'data-node': n.id }, el('span', { class: 'label' }, n.id), el('div', { class: 'track' }, ...spans));
    }));
  }

  /** Validation and training error by round (rounds numbered on across jobs), x spanning the rounds so far. */
  renderRoundsChart(rounds) {
    const data = [rounds.map((_, i) => i + 1), rounds.map((r) => r.validationError), rounds.map((r) => r.trainError)];
    this.chart('rounds', data, [
      { label: 'validation error', stroke: '#dc2626', width: 1.5, points: { show: true, size: 5 } },
      { label: 'training error', stroke: '#2563eb', width: 1.5, points: { show: true, size: 5 } },
    ], rounds.length, '', null, { label: 'round', range: null });
  }

  renderEvents() {
    const list = this.node.querySelector('ol.events');
    const events = this.data.events.slice(-300).reverse();
    list.replaceChildren(...events.map((e) => el('li', { class: e.level, 'data-kind': e.kind }, el('time', {}, fmt.clock(e.time)), el('span', {}, e.text))));
  }

  renderCharts() {
    // A GRPO run (smolcluster grpo): its own charts in place of the training loop's.
    const grpo = this.data.grpo.x.length > 0;
    this.node.querySelector('.grpo-charts').hidden = !grpo;
    this.node.querySelector('.charts:not(.grpo-charts)').hidden = grpo;
    if (grpo) return this.renderGrpoCharts();
    const b = this.data.buckets;
    const e = this.data.evals;
    const ranks = Object.keys(b.compute).map(Number).sort((x, y) => x - y);

    const lossData = uPlot.join([[b.x, b.loss], [e.x, e.loss]]);
    this.chart('loss', lossData, [
      { label: 'train', stroke: '#2563eb', width: 1.5 },
      { label: 'test', stroke: '#dc2626', width: 1.5, spanGaps: true, points: { show: true, size: 5 } },
    ], b.x.length + e.x.length);
    this.chart('accuracy', [e.x, e.accuracy.map((a) => (a == null ? null : a * 100))], [
      { label: 'test accuracy %', stroke: '#16a34a', width: 1.5, points: { show: true, size: 5 } },
    ], e.x.length, '', [0, 100]);
    const tokens = isTokenRun(b);
    this.node.querySelector('[data-chart="throughput"] small').textContent = tokens ? '(tokens/s, cluster)' : '(samples/s, cluster)';
    this.chart('throughput', [b.x, tokens ? b.tokensPerSec : b.samplesPerSec], [{ label: tokens ? 'tokens/s' : 'samples/s', stroke: '#0891b2', width: 1.5 }], b.x.length, tokens ? 'tokens' : 'samples');
    this.chart('lr', [b.x, b.lr], [{ label: 'learning rate', stroke: '#ca8a04', width: 1.5 }], b.x.length);
    const hasPerplexity = e.perplexity.some((p) => p != null);
    this.node.querySelector('[data-chart="perplexity"]').hidden = !hasPerplexity;
    if (hasPerplexity) this.chart('perplexity', [e.x, e.perplexity], [{ label: 'test perplexity', stroke: '#dc2626', width: 1.5, points: { show: true, size: 5 } }], e.x.length);
    this.renderMfu(tokens);
    const stepSeries = [];
    const stepData = [b.x];
    for (const r of ranks) {
      stepSeries.push({ label: `rank ${r} compute`, stroke: rankColor(r), width: 1.5 });
      stepData.push(b.compute[r]);
      stepSeries.push({ label: `rank ${r} wait`, stroke: rankColor(r), width: 1, dash: [5, 4] });
      stepData.push(b.wait[r]);
    }
    this.chart('steptime', stepData, stepSeries, b.x.length, ranks.join(','));
    const hasGrad = b.gradNorm.some((g) => g != null);
    this.node.querySelector('[data-chart="gradnorm"]').hidden = !hasGrad;
    if (hasGrad) this.chart('gradnorm', [b.x, b.gradNorm], [{ label: 'grad norm', stroke: '#9333ea', width: 1.5 }], b.x.length);
  }

  /**
   * MFU per bucket: the run's MFU (result.json: tokens/s × FLOPs per token over the trainers' GEMM
   * peak, probed after training) scaled by each bucket's tokens/s against the run's; until the run
   * has ended there is no peak to divide by, and the chart says so.
   */
  renderMfu(tokens) {
    const fig = this.node.querySelector('[data-chart="mfu"]');
    fig.hidden = !tokens;
    if (!tokens) return;
    const r = this.status.result;
    const mfu = r && r.mfu && r.tokens_per_sec ? r.mfu.value / r.tokens_per_sec : null;
    const b = this.data.buckets;
    this.chart('mfu', [b.x, b.tokensPerSec.map((t) => (t == null || mfu === null ? null : t * mfu * 100))], [{ label: 'MFU %', stroke: '#0d9488', width: 1.5 }], mfu === null ? 0 : b.x.length);
  }

  /** A GRPO run's header: what it trains on, its steps and rewards. */
  grpoHead(c) {
    const g = this.data.grpo;
    return [
      ['model', c.model ?? '–'],
      ['prompts', c.task ? `--task ${c.task.name}` : (c.data_file ?? '–')],
      ['G', c.generations ?? '–'],
      ['steps', fmt.int(lastOf(g.x))],
      ['reward', fmt.num(lastOf(g.reward))],
      ['held-out reward', fmt.num(lastOf(g.evalReward))],
      ['rollout tok/s', fmt.int(lastOf(g.rolloutTokensPerSec))],
    ];
  }

  renderGrpoCharts() {
    const g = this.data.grpo;
    const points = { show: true, size: 4 };
    const band = (sign) => g.reward.map((r, i) => r + sign * g.rewardStd[i]);
    this.chart('grpo-reward', uPlot.join([[g.x, g.reward, band(1), band(-1)], [g.evalX, g.evalReward]]), [
      { label: 'reward', stroke: '#2563eb', width: 1.5 },
      { label: '+ std', stroke: '#93c5fd', width: 1, dash: [4, 4] },
      { label: '− std', stroke: '#93c5fd', width: 1, dash: [4, 4] },
      { label: 'held-out', stroke: '#dc2626', width: 1.5, spanGaps: true, points },
    ], g.x.length + g.evalX.length);
    const hasKl = g.kl.some((k) => k != null);
    this.chart('grpo-kl', [g.x, g.kl], [{ label: 'kl', stroke: '#9333ea', width: 1.5 }], hasKl ? g.x.length : 0);
    this.chart('grpo-clip', [g.x, g.clipRatio], [{ label: 'clip fraction', stroke: '#ca8a04', width: 1.5 }], g.x.length, '', [0, 1]);
    this.chart('grpo-length', [g.x, g.completionLength], [{ label: 'mean length', stroke: '#16a34a', width: 1.5 }], g.x.length);
    this.chart('grpo-tps', [g.x, g.rolloutTokensPerSec, g.trainTokensPerSec], [
      { label: 'rollout tok/s', stroke: '#0891b2', width: 1.5 },
      { label: 'train tok/s', stroke: '#db2777', width: 1.5 },
    ], g.x.length);
    // Whole versions from 0 to the largest seen (at least 1: a synchronous run's zeros sit on the axis, not mid-chart).
    const stalest = g.staleness.reduce((a, s) => (s > a ? s : a), 1);
    this.chart('grpo-staleness', [g.x, g.staleness], [{ label: 'staleness', stroke: '#475569', width: 1.5 }], g.x.length, `max ${stalest}`, [0, stalest]);
  }

  /** The run's last step so far: every chart's x-axis spans 0 to it (one point would otherwise pad it). */
  lastStep() {
    const last = (xs) => (xs.length ? xs[xs.length - 1] : 0);
    return Math.max(1, last(this.data.buckets.x), last(this.data.evals.x), last(this.data.grpo.x), last(this.data.grpo.evalX));
  }

  /**
   * Creates or updates one chart; `shape` changes (new ranks) rebuild it; `yRange` fixes the y-axis;
   * `x` names the x-axis and its span (default: steps, 0 to the run's last; a null range follows the data).
   */
  chart(name, data, series, points, shape = '', yRange = null, x = { label: 'step', range: () => [0, this.lastStep()] }) {
    const fig = this.node.querySelector(`[data-chart="${name}"]`);
    fig.dataset.points = String(points);
    const host = fig.querySelector('.plot');
    const existing = this.charts[name];
    if (existing && existing.shape === shape) {
      existing.plot.setData(data);
      return;
    }
    if (existing) existing.plot.destroy();
    const width = Math.max(240, host.clientWidth || fig.clientWidth - 16);
    const opts = {
      width,
      height: 190,
      scales: { x: { time: false, ...(x.range ? { range: x.range } : {}) }, ...(yRange ? { y: { range: () => yRange } } : {}) },
      // The axes' spans, readable by tests and tools (uPlot draws them on a canvas).
      hooks: { setScale: [(u, key) => { fig.dataset[`${key}Range`] = `${u.scales[key].min},${u.scales[key].max}`; }] },
      series: [{ label: x.label }, ...series],
      axes: [{}, { size: 52, values: (u, vals) => vals.map(compact) }],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    };
    this.charts[name] = { plot: new uPlot(opts, data, host), shape };
  }

  resize() {
    for (const [name, c] of Object.entries(this.charts)) {
      const host = this.node.querySelector(`[data-chart="${name}"] .plot`);
      c.plot.setSize({ width: Math.max(240, host.clientWidth), height: 190 });
    }
  }
}

/** Axis numbers: 1.5k, 20k, 1.2M. */
function compact(v) {
  if (v == null) return '';
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(0)}k`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  // Learning rates: 2e-4 rather than a 0.0002 wider than the axis.
  if (a > 0 && a < 1e-2) return v.toExponential(1).replace(/\.0e/, 'e').replace('e-', 'e−');
  return String(+v.toPrecision(4));
}

function lastOf(a) {
  for (let i = a.length - 1; i >= 0; i--) if (a[i] != null) return a[i];
  return null;
}

async function main() {
  const runs = await (await fetch('/api/runs')).json();
  const root = document.getElementById('runs');
  root.style.setProperty('--columns', String(Math.min(runs.length, 3)));
  const views = runs.map((info) => new RunView(root, info));
  let pending = 0;
  window.addEventListener('resize', () => {
    clearTimeout(pending);
    pending = setTimeout(() => views.forEach((v) => v.resize()), 100);
  });
  // The elapsed time of a live run moves on between updates.
  setInterval(() => views.forEach((v) => v.live && v.status && !v.status.ended && v.renderHead()), 1000);
}

main().catch((e) => {
  document.getElementById('runs').append(el('div', { class: 'alert' }, `dashboard: ${e.message}`));
});

/**
 * A rank is called a straggler only when it is clearly slower: 1.5x the others' compute time and
 * at least 1 ms more per step. Smaller gaps are scheduling noise on a shared machine.
 */
/** A token task's run: its step lines carry tokens. */
function isTokenRun(b) {
  return b.tokensPerSec.some((t) => t != null);
}

function isStraggler(st) {
  return st.ratio >= 1.5 && st.computeMs - st.othersComputeMs >= 1;
}
