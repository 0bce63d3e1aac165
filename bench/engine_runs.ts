/**
 * The whole-run section of bench:engine: a user's one-process training run, start to exit — process
 * start-up, MNIST loading, one epoch of MLP 784-128-10 at batch 32 with the optimizer, per-step
 * metrics, the final test evaluation and result files — for Adam and SGD (momentum 0.9), our
 * `smolcluster train` CLI beside bench/reference/train_torch.py, one thread each. Runs alternate
 * ours, torch, ours, torch … (`rounds` times each); the figure is training samples (60,000) / the
 * median wall time, so start-up and evaluation count against both exactly as a user sees them.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultMnistDir } from '../src/data/mnist.js';
import { findPythonWith, fmtNum, fmtRatio, median, packageRoot, ratio, renderTable, threadEnv } from './lib/index.js';

const RUNS = [
  { id: 'run-adam', optimizer: 'adam', lr: 0.001 },
  { id: 'run-sgd', optimizer: 'sgd', lr: 0.02 },
] as const;
/** The whole-run rows as `--only` names them. */
export const RUN_IDS = RUNS.map((r) => r.id);
export type RunId = (typeof RUNS)[number]['id'];
const BATCH = 32;
const SAMPLES = 60_000;

export interface RunRow {
  optimizer: string;
  ours: number[];
  torch: number[];
  /** Samples/s from the median wall time. */
  oursRate: number | null;
  torchRate: number | null;
  ratio: number | null;
  oursAccuracy: number | null;
  torchAccuracy: number | null;
  errors: string[];
}

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ seconds: number; error: string | null }> {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      resolve({ seconds, error: code === 0 ? null : `exit ${code ?? signal}: ${stderr.trim().split('\n').pop() ?? ''}` });
    });
  });
}

function accuracy(file: string): number | null {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const acc = r.test_accuracy ?? (r.final as Record<string, unknown> | undefined)?.testAccuracy ?? r.testAccuracy;
    return typeof acc === 'number' ? acc : null;
  } catch {
    return null;
  }
}

export async function runWholeRuns(ids: readonly RunId[], rounds: number): Promise<{ rows: RunRow[]; torchReason: string | null }> {
  const root = packageRoot(import.meta.url);
  const cli = join(root, 'dist', 'src', 'cli', 'main.js');
  const script = join(root, 'bench', 'reference', 'train_torch.py');
  const probe = findPythonWith('torch');
  const python = probe.found?.python ?? null;
  const dataDir = defaultMnistDir();
  const rows: RunRow[] = [];
  for (const r of RUNS.filter((x) => ids.includes(x.id))) {
    const row: RunRow = { optimizer: r.optimizer, ours: [], torch: [], oursRate: null, torchRate: null, ratio: null, oursAccuracy: null, torchAccuracy: null, errors: [] };
    for (let i = 0; i < rounds; i++) {
      const dir = mkdtempSync(join(tmpdir(), `sc-bench-run-${r.id}-`));
      try {
        const ours = await timed(process.execPath, [
          cli, 'train', '--model', 'mlp', '--dataset', 'mnist', '--epochs', '1', '--batch-size', String(BATCH),
          '--optimizer', r.optimizer, '--lr', String(r.lr), '--schedule', 'constant', '--threads', '1',
          '--experiments-dir', dir, '--name', 'run', '--output', join(dir, 'ours.json'),
        ], threadEnv(1), 600_000);
        if (ours.error) row.errors.push(`ours: ${ours.error}`);
        else {
          row.ours.push(ours.seconds);
          row.oursAccuracy = accuracy(join(dir, 'ours.json'));
        }
        if (python) {
          const t = await timed(python, [script, '--data-dir', dataDir, '--out', join(dir, 'torch'), '--optimizer', r.optimizer,
            '--lr', String(r.lr), '--batch-size', String(BATCH)], threadEnv(1), 600_000);
          if (t.error) row.errors.push(`torch: ${t.error}`);
          else {
            row.torch.push(t.seconds);
            row.torchAccuracy = accuracy(join(dir, 'torch', 'result.json'));
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      process.stderr.write(`[runs] ${r.optimizer} round ${i + 1}: ours ${row.ours.at(-1)?.toFixed(1) ?? '—'} s, torch ${row.torch.at(-1)?.toFixed(1) ?? '—'} s\n`);
    }
    row.oursRate = row.ours.length ? SAMPLES / median(row.ours) : null;
    row.torchRate = row.torch.length ? SAMPLES / median(row.torch) : null;
    row.ratio = ratio(row.oursRate, row.torchRate);
    rows.push(row);
  }
  return { rows, torchReason: python ? null : probe.reason };
}

export function renderWholeRuns(res: { rows: RunRow[]; torchReason: string | null }): string {
  const secs = (xs: number[]): string => (xs.length ? xs.map((x) => x.toFixed(1)).join(', ') : '—');
  const pct = (x: number | null): string => (x === null ? '—' : `${(100 * x).toFixed(2)} %`);
  const table = renderTable(
    [{ header: 'whole run: train MLP, MNIST, 1 epoch, batch 32' }, { header: 'ours s (runs)' }, { header: 'torch s (runs)' },
      { header: 'ours samples/s' }, { header: 'torch samples/s' }, { header: 'ours/torch (target ≥2.0)' }, { header: 'test acc ours / torch' }],
    res.rows.map((r) => [
      r.optimizer, secs(r.ours), secs(r.torch), fmtNum(r.oursRate, 0), fmtNum(r.torchRate, 0),
      `${fmtRatio(r.ratio)} ${r.ratio === null ? '?' : r.ratio >= 2 ? '✓' : '✗'}`, `${pct(r.oursAccuracy)} / ${pct(r.torchAccuracy)}`,
    ]),
  );
  const notes = res.rows.flatMap((r) => r.errors.map((e) => `${r.optimizer}: ${e}`));
  if (res.torchReason) notes.push(`torch: unavailable — ${res.torchReason}`);
  return `Whole runs (process start to exit, incl. data loading, metrics and evaluation; one thread):\n${table}${notes.length ? `\n${notes.join('\n')}` : ''}`;
}
