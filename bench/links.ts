/**
 * npm run bench:links -- [--preset wifi|ethernet|thunderbolt|all] [--models mlp,cnn,resnet18,gpt2-tiny] [--no-torch] [--no-accuracy] [--no-overlap] [--quick] [--ours-flags '--overlap ...']
 *
 * Two workers in two network namespaces, as two hosts on an emulated link (bench/lib/netns.ts): each
 * egress shaped with `tc tbf`, and (latency ≥ 0.1 ms) every frame held for the one-way latency by a
 * relay in a middle namespace (bench/lib/link_relay.py), so PyTorch's Gloo and smolcluster cross the
 * same link. Presets: wifi 200 Mbit/s 5 ms, ethernet 1 Gbit/s 0.2 ms, thunderbolt 10 Gbit/s 0.05 ms
 * (a direct veth pair: under the relay's own cost). Each link's measured TCP round trip is printed.
 *
 * 1. Throughput: per preset and model, cluster samples/s of `worker --strategy allreduce` (ours) and of
 *    PyTorch DDP over Gloo (bench/reference/ddp_torch.py: the same model, built by
 *    test/nn/interchange/torch_models.py for ResNet-18 and GPT-2-tiny), each with its scaling
 *    efficiency = 2-worker rate / (2 × its own 1-process rate measured just before). Median of 7
 *    windows of per-step end times. MLP and CNN train on MNIST; ResNet-18 (batch 8, CIFAR shape) and
 *    GPT-2-tiny (batch 8 sequences of 128 GPT-2 tokens) on the inputs of bench/lib/link_inputs.ts.
 * 2. Time to accuracy (first preset, MLP, batch 32 per worker): allreduce for one epoch sets the
 *    target (its final test accuracy) and time; int8 with error feedback (same steps: accuracy and
 *    throughput); DiLoCo (H = 20, inner AdamW lr 1e-3, outer Nesterov lr 0.7 momentum 0.9: the paper's) and local SGD (H = 20) evaluated every 50 steps
 *    until they reach the target — their time is the end of the step before that evaluation.
 * 3. Overlap (first preset, CNN): the default buckets, 0.5 MB buckets after backward, and the same
 *    buckets with --overlap; samples/s and the per-step bucket exchange time and its part during backward.
 * Last line: one JSON object with every figure.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultMnistDir } from '../src/data/mnist.js';
import { findPythonWith, fmtNum, fmtRatio, machineInfo, packageRoot, renderTable, threadEnv } from './lib/index.js';
import { LINK_PRESETS, type Link, type LinkPreset, createLink, measureRttMs, netnsAvailable } from './lib/netns.js';
import { windowsFromStepTimes } from './lib/step_windows.js';
import { writeCifarLike, writeDocsText } from './lib/link_inputs.js';

const ROOT = packageRoot(import.meta.url);
const CLI = join(ROOT, 'dist/src/cli/main.js');
const TOKEN = 'bench-links-token-0123456789abcdef';
const PORT = 29611;

/** oursFlags: extra `worker` flags for our throughput runs (e.g. --overlap), to compare settings beside the same torch rows. */
interface Options { presets: LinkPreset[]; models: string[]; torch: boolean; accuracy: boolean; overlap: boolean; quick: boolean; oursFlags: string[] }

function parseArgs(argv: string[]): Options {
  const o: Options = { presets: [LINK_PRESETS.wifi], models: ['mlp', 'cnn', 'resnet18', 'gpt2-tiny'], torch: true, accuracy: true, overlap: true, quick: false, oursFlags: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--preset') {
      const v = argv[++i];
      o.presets = v === 'all' ? Object.values(LINK_PRESETS) : v.split(',').map((p) => LINK_PRESETS[p] ?? fail(`unknown preset '${p}' (wifi, ethernet, thunderbolt, all)`));
    } else if (a === '--models') o.models = argv[++i].split(',');
    else if (a === '--no-torch') o.torch = false;
    else if (a === '--no-accuracy') o.accuracy = false;
    else if (a === '--no-overlap') o.overlap = false;
    else if (a === '--quick') o.quick = true;
    else if (a === '--ours-flags') o.oursFlags = argv[++i].split(/\s+/).filter(Boolean);
    else fail(`unknown argument ${a}`);
  }
  return o;
}

function fail(message: string): never {
  throw new Error(`bench:links: ${message}`);
}

interface Exit { code: number | null; stdout: string; stderr: string }

function run(argv: string[], env: NodeJS.ProcessEnv, timeoutMs = 600_000): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Per-rank batch and steps of the throughput runs: enough for a warm-up and 7 windows (ResNet-18, GPT-2-tiny: 2 steps each, `--quick` 1). */
function plan(model: string, quick: boolean): { batch: number; steps: number } {
  const p = model === 'mlp' ? { batch: 32, steps: 300 } : model === 'cnn' ? { batch: 32, steps: 60 } : { batch: 8, steps: 18 };
  return quick ? { batch: p.batch, steps: Math.max(12, Math.round(p.steps / 2)) } : p;
}

/** What each model trains on (`worker`/`train` flags): MNIST by default, else the files of bench/lib/link_inputs.ts. */
type DataFlags = Record<string, string[]>;

function dataFlags(dir: string): DataFlags {
  return {
    resnet18: ['--dataset', 'cifar10', '--data-dir', writeCifarLike(dir)],
    'gpt2-tiny': ['--dataset', 'text', '--tokenizer', 'gpt2', '--data-file', writeDocsText(dir, ROOT)],
  };
}

interface OurRun { ends: number[]; stepMs: number[]; overlapMs: number; bucketMs: number; evals: Array<{ step: number; accuracy: number }>; stepEnd: Map<number, number>; start: number; accuracy: number }

/** smolcluster workers, one per namespace (or one local process with `link` null). */
async function ours(link: Link | null, model: string, batch: number, steps: number, extra: string[]): Promise<OurRun> {
  const dir = mkdtempSync(join(tmpdir(), 'smolcluster-bench-links-'));
  try {
    const common = ['--model', model, '--batch-size', String(batch), '--max-steps', String(steps), '--epochs', '1000', '--threads', '1',
      '--checksum-every', '0', '--timeout', '120', '--name', 'l', '--experiments-dir', dir, ...extra];
    const env = threadEnv(1, { SMOLCLUSTER_TOKEN: TOKEN });
    for (const k of ['RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT']) delete env[k];
    const exits = link
      ? await Promise.all([0, 1].map((r) => run(['ip', 'netns', 'exec', link.ns[r], process.execPath, CLI, 'worker', '--rank', String(r), '--world-size', '2',
        '--master', `${link.addr[0]}:${PORT}`, ...common], env)))
      : [await run([process.execPath, CLI, 'train', ...common], env)];
    for (const e of exits) if (e.code !== 0) fail(`smolcluster ${model} ${extra.join(' ')} failed: ${e.stderr.trim().split('\n').slice(-2).join(' | ')}`);
    const lines = readFileSync(join(dir, 'l', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>);
    const steps0 = lines.filter((r) => r.kind === 'step' && r.rank === 0).sort((a, b) => (a.step as number) - (b.step as number));
    const first = steps0[0];
    const start = (first.time as number) - (first.compute_ms as number) - (first.comm_ms as number) - (first.wait_ms as number);
    const evals = lines.filter((r) => r.kind === 'eval').map((r) => ({ step: r.step as number, accuracy: r.test_accuracy as number }));
    return {
      overlapMs: meanOf(steps0, 'overlap_ms'), bucketMs: meanOf(steps0, 'bucket_comm_ms'),
      ends: steps0.map((r) => r.time as number), stepMs: steps0.map((r) => (r.compute_ms as number) + (r.comm_ms as number) + (r.wait_ms as number)), evals, start, accuracy: evals[evals.length - 1]?.accuracy ?? NaN,
      stepEnd: new Map(steps0.map((r) => [r.step as number, r.time as number])),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function meanOf(rows: Array<Record<string, number | string>>, key: string): number {
  const v = rows.slice(Math.floor(rows.length * 0.2)).map((r) => r[key]).filter((x): x is number => typeof x === 'number');
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
}

async function torchRun(python: string, link: Link | null, model: string, batch: number, steps: number): Promise<number> {
  const args = [python, join(ROOT, 'bench/reference/ddp_torch.py'), '--data-dir', defaultMnistDir(), '--model', model, '--batch-size', String(batch), '--steps', String(steps)];
  const world = link ? 2 : 1;
  const master = link ? link.addr[0] : '127.0.0.1';
  const exits = await Promise.all(Array.from({ length: world }, (_, r) => run(link ? ['ip', 'netns', 'exec', link.ns[r], ...args] : args,
    threadEnv(1, { RANK: String(r), WORLD_SIZE: String(world), MASTER_ADDR: master, MASTER_PORT: String(PORT + 1), ...(link ? { GLOO_SOCKET_IFNAME: link.dev[r] } : {}) }))));
  for (const e of exits) if (e.code !== 0) fail(`torch ${model} failed: ${e.stderr.trim().split('\n').slice(-2).join(' | ')}`);
  const out = JSON.parse(exits[0].stdout.trim().split('\n').pop() ?? '{}') as { step_end_times_ms: number[] };
  return windowsFromStepTimes(out.step_end_times_ms, batch * world).median;
}

const rate = (r: OurRun, perStep: number): number => windowsFromStepTimes(r.ends, perStep, 7, 0.2, 500).median;

/** One process's rate from its measured step times (steps of a fast model end within one Date.now() ms). */
const singleRate = (r: OurRun, perStep: number): number => {
  const timed = r.stepMs.slice(Math.floor(r.stepMs.length * 0.2));
  return (timed.length * perStep) / (timed.reduce((a, b) => a + b, 0) / 1000);
};

interface ThroughputRow { preset: string; rttMs: number; model: string; batch: number; ours: number; oursEff: number; torch: number | null; torchEff: number | null }

/**
 * Each row's 1-process rates are measured just before its 2-worker runs (ours, torch, then the pairs):
 * on a shared machine the load moves within minutes, and a denominator from another moment once gave
 * "scaling" above 100%.
 */
async function throughput(o: Options, python: string | null, data: DataFlags): Promise<ThroughputRow[]> {
  const rows: ThroughputRow[] = [];
  for (const preset of o.presets) {
    const link = await createLink(preset);
    try {
      const rttMs = await measureRttMs(link);
      process.stderr.write(`bench:links: ${preset.name}: TCP round trip ${rttMs.toFixed(2)} ms (median of 30)\n`);
      for (const model of o.models) {
        const { batch, steps } = plan(model, o.quick);
        process.stderr.write(`bench:links: ${preset.name}, ${model}: one process, then 2 workers ...\n`);
        const s = { ours: singleRate(await ours(null, model, batch, steps, data[model] ?? []), batch), torch: python ? await torchRun(python, null, model, batch, steps) : null };
        const mine = rate(await ours(link, model, batch, steps, [...(data[model] ?? []), ...o.oursFlags]), 2 * batch);
        const ref = python ? await torchRun(python, link, model, batch, steps) : null;
        rows.push({ preset: preset.name, rttMs, model, batch, ours: mine, oursEff: mine / (2 * s.ours), torch: ref, torchEff: ref !== null && s.torch ? ref / (2 * s.torch) : null });
      }
    } finally {
      link.close();
    }
  }
  return rows;
}

interface AccuracyRow { run: string; accuracy: number; seconds: number | null; samplesPerSec: number; note: string }

async function timeToAccuracy(preset: LinkPreset, quick: boolean): Promise<AccuracyRow[]> {
  const batch = 32;
  const epochSteps = Math.floor(60000 / 2 / batch);
  const steps = quick ? Math.round(epochSteps / 2) : epochSteps;
  const link = await createLink(preset);
  try {
    const rows: AccuracyRow[] = [];
    process.stderr.write(`bench:links: ${preset.name}, time to accuracy: allreduce ...\n`);
    const ar = await ours(link, 'mlp', batch, steps, []);
    const target = ar.accuracy;
    rows.push({ run: 'allreduce', accuracy: target, seconds: (ar.ends[ar.ends.length - 1] - ar.start) / 1000, samplesPerSec: rate(ar, 2 * batch), note: 'sets the target' });
    process.stderr.write(`bench:links: ${preset.name}, int8 ...\n`);
    const q = await ours(link, 'mlp', batch, steps, ['--compress', 'int8']);
    rows.push({ run: 'allreduce --compress int8', accuracy: q.accuracy, seconds: (q.ends[q.ends.length - 1] - q.start) / 1000, samplesPerSec: rate(q, 2 * batch), note: 'same steps' });
    for (const [name, extra] of [
      ['diloco H=20 (inner AdamW lr 1e-3, outer Nesterov lr 0.7 m 0.9)', ['--strategy', 'diloco', '--inner-steps', '20', '--optimizer', 'adamw', '--lr', '0.001', '--outer-lr', '0.7', '--outer-momentum', '0.9']],
      ['local-sgd H=20', ['--strategy', 'local-sgd', '--inner-steps', '20']],
    ] as const) {
      process.stderr.write(`bench:links: ${preset.name}, ${name} ...\n`);
      const r = await ours(link, 'mlp', batch, 3 * steps, [...extra, '--eval-every', '50']);
      const hit = r.evals.find((e) => e.accuracy >= target);
      const seconds = hit ? ((r.stepEnd.get(hit.step - 1) ?? NaN) - r.start) / 1000 : null;
      rows.push({ run: name, accuracy: hit?.accuracy ?? Math.max(...r.evals.map((e) => e.accuracy)), seconds, samplesPerSec: rate(r, 2 * batch), note: hit ? `reached at step ${hit.step}` : `not reached in ${3 * steps} steps` });
    }
    return rows;
  } finally {
    link.close();
  }
}

interface OverlapRow { run: string; samplesPerSec: number; bucketMs: number; overlapMs: number }

/** CNN on the link: buckets after backward vs overlapped with it (same 0.5 MB buckets), beside the default one-bucket exchange. */
async function overlapRows(preset: LinkPreset, quick: boolean): Promise<OverlapRow[]> {
  const { batch, steps } = plan('cnn', quick);
  const buckets = ['--bucket-mb', '0.5', '--first-bucket-mb', '0.125'];
  const link = await createLink(preset);
  try {
    const rows: OverlapRow[] = [];
    for (const [name, extra] of [['default buckets (25 MB, 1 MB first)', []], ['0.5 MB buckets after backward', buckets], ['0.5 MB buckets, --overlap', [...buckets, '--overlap']]] as const) {
      process.stderr.write(`bench:links: ${preset.name}, cnn, ${name} ...\n`);
      const r = await ours(link, 'cnn', batch, steps, [...extra]);
      rows.push({ run: name, samplesPerSec: rate(r, 2 * batch), bucketMs: r.bucketMs, overlapMs: r.overlapMs });
    }
    return rows;
  } finally {
    link.close();
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const why = netnsAvailable();
  if (why) fail(`needs network namespaces (${why}); run as root on Linux`);
  const probe = o.torch ? findPythonWith('torch') : { found: null, reason: 'disabled by --no-torch' };
  if (!probe.found) process.stderr.write(`bench:links: PyTorch reference skipped (${probe.reason})\n`);
  const inputs = mkdtempSync(join(tmpdir(), 'smolcluster-bench-links-data-'));
  let rows: ThroughputRow[];
  try {
    rows = await throughput(o, probe.found?.python ?? null, dataFlags(inputs));
  } finally {
    rmSync(inputs, { recursive: true, force: true });
  }
  process.stdout.write('Two workers on an emulated link (veth + tc tbf + delaying relay, the same for both), 1 thread each; cluster samples/s, median of 7 windows\n');
  process.stdout.write(`${renderTable(
    [{ header: 'link' }, { header: 'RTT ms', align: 'right' }, { header: 'model' }, { header: 'batch/rank' }, { header: 'smolcluster', align: 'right' }, { header: 'scaling', align: 'right' }, { header: 'torch DDP', align: 'right' }, { header: 'scaling', align: 'right' }, { header: 'ours/torch', align: 'right' }],
    rows.map((r) => [r.preset, r.rttMs.toFixed(2), r.model, String(r.batch), fmtNum(r.ours, 0), `${(100 * r.oursEff).toFixed(0)}%`, fmtNum(r.torch, 0), r.torchEff === null ? '—' : `${(100 * r.torchEff).toFixed(0)}%`, fmtRatio(r.torch ? r.ours / r.torch : null)]),
  )}\n`);
  const acc = o.accuracy ? await timeToAccuracy(o.presets[0], o.quick) : [];
  if (acc.length) {
    const base = acc[0];
    process.stdout.write(`\nTime to allreduce's test accuracy, MNIST MLP, 2 workers, batch 32 each, ${o.presets[0].name}\n`);
    process.stdout.write(`${renderTable(
      [{ header: 'run' }, { header: 'test acc %', align: 'right' }, { header: 'seconds', align: 'right' }, { header: 'time vs allreduce', align: 'right' }, { header: 'samples/s', align: 'right' }, { header: 'throughput vs allreduce', align: 'right' }, { header: 'note' }],
      acc.map((r) => [r.run, (100 * r.accuracy).toFixed(2), r.seconds === null ? '—' : r.seconds.toFixed(1), r.seconds === null ? '—' : fmtRatio(r.seconds / base.seconds!), fmtNum(r.samplesPerSec, 0), fmtRatio(r.samplesPerSec / base.samplesPerSec), r.note]),
    )}\n`);
  }
  const overlap = o.overlap ? await overlapRows(o.presets[0], o.quick) : [];
  if (overlap.length) {
    process.stdout.write(`\nGradient buckets overlapped with backward, CNN, 2 workers, batch ${plan('cnn', o.quick).batch} each, ${o.presets[0].name} (per-step means of rank 0)\n`);
    process.stdout.write(`${renderTable(
      [{ header: 'run' }, { header: 'samples/s', align: 'right' }, { header: 'vs default', align: 'right' }, { header: 'bucket comm ms', align: 'right' }, { header: 'of it during backward', align: 'right' }],
      overlap.map((r) => [r.run, fmtNum(r.samplesPerSec, 0), fmtRatio(r.samplesPerSec / overlap[0].samplesPerSec), Number.isNaN(r.bucketMs) ? '—' : r.bucketMs.toFixed(1), Number.isNaN(r.overlapMs) ? '—' : r.overlapMs.toFixed(1)]),
    )}\n`);
  }
  process.stdout.write(`${JSON.stringify({ bench: 'links', throughput: rows, timeToAccuracy: acc, overlap, torch: probe.found, machine: machineInfo() })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exitCode = 1;
});
