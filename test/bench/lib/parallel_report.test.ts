import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import {
  type RowResult, ROWS, globalBatch, memoryNotAbove, missingFlags, modelShape, oursFigures, parallelTable, parseParallelArgs,
  pipelineVersusDataParallel, rowFlags, rowRatio, tokensPerSec, torchError, unknownFlagIn,
} from '../../../bench/lib/parallel_report.js';
import { bytesBetween, counterAt } from '../../../bench/lib/wire_counter.js';
import { CLI } from '../../helpers/cli.js';

const row = (id: string) => ROWS.find((r) => r.id === id)!;
const MiB = 2 ** 20;

describe('bench:parallel options', () => {
  it('defaults to GPT-2 124M on 4 workers; sizes are flags', () => {
    const o = parseParallelArgs([]);
    assert.equal(o.model, 'gpt2');
    assert.equal(o.workers, 4);
    assert.deepEqual(modelShape(o), { layers: 12, width: 768, heads: 12, positions: 1024, dropout: 0.1 });
    const t = parseParallelArgs(['--model', 'gpt2-tiny', '--layers', '4', '--context', '32', '--batch-size', '2', '--steps', '3', '--only', 'zero3,1f1b']);
    assert.deepEqual(modelShape(t), { layers: 4, width: 128, heads: 4, positions: 128, dropout: 0 });
    assert.equal(globalBatch(t), 8);
    assert.deepEqual(t.only, ['zero3', '1f1b']);
  });

  it('refuses bad input naming the flag', () => {
    assert.throws(() => parseParallelArgs(['--steps', '0']), /--steps needs an integer ≥ 1/);
    assert.throws(() => parseParallelArgs(['--model', 'bert']), /--model must be one of/);
    assert.throws(() => parseParallelArgs(['--links', 'modem']), /--links must be wifi or ethernet/);
    assert.throws(() => parseParallelArgs(['--only', 'zero9']), /--only: unknown zero9/);
    assert.throws(() => parseParallelArgs(['--frobnicate']), /unknown argument --frobnicate/);
    assert.throws(() => parseParallelArgs(['--model', 'gpt2-tiny']), /4-stage pipeline needs at least 4 layers/);
    assert.throws(() => parseParallelArgs(['--batch-size', '1', '--micro-batches', '3']), /must divide into --micro-batches 3/);
    assert.throws(() => parseParallelArgs(['--steps', '1', '--warmup', '1']), /must exceed --warmup/);
    assert.throws(() => parseParallelArgs(['--warmup', '0']), /--warmup needs an integer ≥ 1/);
    assert.throws(() => parseParallelArgs(['--links', 'wifi', '--workers', '4']), /--links runs 2 workers/);
  });

  it('--links runs two workers, so a 2-stage pipeline', () => {
    const o = parseParallelArgs(['--links', 'ethernet', '--model', 'gpt2-tiny']);
    assert.equal(o.workers, 2);
    assert.deepEqual(rowFlags(row('1f1b'), o), ['--pipeline-stages', '2', '--micro-batches', '4', '--pipeline-schedule', '1f1b', '--batch-size', '8']);
  });

  it('every row trains the same global batch: data parallel per rank, a pipeline all of it in micro-batches', () => {
    const o = parseParallelArgs(['--batch-size', '2']);
    assert.deepEqual(rowFlags(row('allreduce'), o), ['--batch-size', '2']);
    assert.deepEqual(rowFlags(row('zero3'), o), ['--zero', '3', '--batch-size', '2']);
    assert.deepEqual(rowFlags(row('gpipe'), o), ['--pipeline-stages', '4', '--micro-batches', '4', '--pipeline-schedule', 'gpipe', '--batch-size', '8']);
  });
});

describe('bench:parallel "not available in this build"', () => {
  const help = '  --tensor-parallel <t>   allreduce: split\n  --overlap               all-reduce each bucket\n  --zero <stage>  shard';
  it('lists the flags train --help does not know', () => {
    assert.deepEqual(missingFlags(help, ['--zero', '3', '--batch-size', '2']), ['--batch-size']);
    assert.deepEqual(missingFlags(help, ['--pipeline-stages', '4', '--overlap']), ['--pipeline-stages']);
    // A flag that only prefixes another is not taken for it.
    assert.deepEqual(missingFlags('  --zero-copy  x', ['--zero']), ['--zero']);
  });

  it('reads the real train --help: every flag it lists is found, one it lacks is not', () => {
    const help = spawnSync(process.execPath, [CLI, 'train', '--help'], { encoding: 'utf8' }).stdout;
    const listed = [...help.matchAll(/^\s+(--[a-z][\w-]*)/gm)].map((m) => m[1]);
    assert.ok(listed.includes('--workers') && listed.includes('--tensor-parallel'), 'the help lists its flags');
    assert.deepEqual(missingFlags(help, listed), []);
    assert.deepEqual(missingFlags(help, ['--workers', '--no-such-flag-here']), ['--no-such-flag-here']);
  });

  it('tells an unknown option or value from a real failure', () => {
    assert.equal(unknownFlagIn("error: unknown option '--zero'\n"), '--zero');
    assert.equal(unknownFlagIn("error: option '--pipeline-schedule <name>' argument 'zigzag' is invalid. Allowed choices are gpipe, 1f1b."), '--pipeline-schedule zigzag');
    assert.equal(unknownFlagIn('rank 2 timed out waiting for rank 3'), null);
    // The real CLI's wording of both refusals.
    const refused = (...args: string[]) => spawnSync(process.execPath, [CLI, 'train', ...args], { encoding: 'utf8' }).stderr;
    assert.equal(unknownFlagIn(refused('--no-such-flag-here')), '--no-such-flag-here');
    assert.equal(unknownFlagIn(refused('--strategy', 'bogus')), '--strategy bogus');
  });

  it('the table says so, and gives no ratio or verdict for the row', () => {
    const r: RowResult = { plan: row('zero3'), ours: { status: 'not available', why: 'train --help lists no --zero' },
      torch: { status: 'ran', tokensPerSec: 600, peakRssBytes: [500 * MiB], bytesPerStep: null } };
    const t = parallelTable([r], false);
    assert.match(t, /--zero 3\s+not available in this build/);
    assert.match(t, /FSDP2 fully_shard\s+600\s+500 MiB\s+—\s+≥ 1\.20×, ≤ memory\s*$/m);
    assert.equal(rowRatio(r), null);
  });
});

describe('bench:parallel figures', () => {
  it('tokens/s counts the steps after the warm-up, from the warm-up step\'s end', () => {
    assert.equal(tokensPerSec([1000, 1500, 2000, 2500], 100, 1), (3 * 100 * 1000) / 1500);
    assert.equal(tokensPerSec([1000, 1500], 100, 0, 500), (2 * 100 * 1000) / 1000);
    assert.equal(tokensPerSec([1000], 100, 1), null);
  });

  it('reads rank 0\'s step ends, result.json throughput, bytes per step over the ranks and reported peaks', () => {
    const step = (rank: number, s: number, time: number, extra: object = {}) => JSON.stringify({ kind: 'step', rank, step: s, time, ...extra });
    const metrics = [step(1, 0, 95, { bytes_sent: 999 }), step(0, 1, 200, { bytes_sent: 10, peak_rss_bytes: 5 }), step(0, 0, 100, { bytes_sent: 999 }),
      step(1, 1, 205, { bytes_sent: 30, peak_rss_bytes: 7 }), JSON.stringify({ kind: 'eval', rank: 0, step: 2 })].join('\n');
    const f = oursFigures({ samples_per_sec: 12.5, final_loss: 3.5 }, metrics, 1);
    assert.deepEqual(f.stepEnds, [100, 200]);
    assert.equal(f.resultSamplesPerSec, 12.5);
    assert.equal(f.bytesPerStep, 40);
    assert.deepEqual(f.reportedPeakRss, [5, 7]);
    assert.equal(f.finalLoss, 3.5);
    assert.equal(f.bubble, null);
    assert.deepEqual(oursFigures({ pipeline: { bubble_fraction: 0.4, one_f_one_b_target: 0.75 } }, metrics, 1).bubble, { measured: 0.4, target: 0.75 });
    assert.equal(oursFigures({}, step(0, 0, 1), 0).bytesPerStep, null);
  });

  it('a torch rank\'s failure is its exception\'s first line', () => {
    assert.equal(torchError([null, { rank: 1, error: 'RuntimeError: no reduce_scatter on gloo' }]), 'RuntimeError: no reduce_scatter on gloo');
    assert.equal(torchError([{ rank: 0, step_end_times_ms: [1] }]), null);
  });

  it('ratio, the memory condition and the verdict against the target', () => {
    const ran = (tokens: number, mib: number[]) => ({ status: 'ran' as const, tokensPerSec: tokens, peakRssBytes: mib.map((m) => m * MiB), bytesPerStep: null });
    const fast: RowResult = { plan: row('zero3'), ours: ran(1300, [300, 400]), torch: ran(1000, [450, 420]) };
    assert.equal(rowRatio(fast), 1.3);
    assert.equal(memoryNotAbove(fast), true);
    assert.match(parallelTable([fast], false), /1\.30×\s+≥ 1\.20×, ≤ memory\s+met$/m);
    const heavy: RowResult = { ...fast, ours: ran(1300, [300, 460]) };
    assert.match(parallelTable([heavy], false), /not met \(more memory\)$/m);
    const slow: RowResult = { plan: row('1f1b'), ours: ran(1100, [1]), torch: ran(1000, [1]) };
    assert.match(parallelTable([slow], false), /1\.10×\s+≥ 1\.20×\s+not met \(< 1\.20×\)$/m);
  });

  it('on a link: the pipeline against data parallelism, throughput and bytes per step', () => {
    const side = (tokens: number, bytes: number) => ({ status: 'ran' as const, tokensPerSec: tokens, peakRssBytes: [], bytesPerStep: bytes });
    const rows: RowResult[] = [
      { plan: row('allreduce'), ours: side(100, 8 * MiB), torch: side(80, 8 * MiB) },
      { plan: row('1f1b'), ours: side(250, 2 * MiB), torch: { status: 'failed', why: 'x' } },
    ];
    assert.equal(pipelineVersusDataParallel(rows, 'ours'), 'ours: 1F1B pipeline 2.50× the data-parallel throughput, 0.25× its bytes on the wire per step');
    assert.equal(pipelineVersusDataParallel(rows, 'torch'), null);
    assert.match(parallelTable(rows, true), /ours wire\/step.*torch wire\/step/);
    assert.match(parallelTable(rows, true), /allreduce \(DDP\)\s+100\s+—\s+8\.00 MiB/);
  });

  it('wire bytes between two times are read off the sampled counter, interpolated', () => {
    const samples = [{ ms: 0, bytes: 0 }, { ms: 10, bytes: 1000 }, { ms: 20, bytes: 1000 }, { ms: 30, bytes: 4000 }];
    assert.equal(counterAt(samples, 5), 500);
    assert.equal(counterAt(samples, 40), null);
    assert.equal(bytesBetween(samples, 5, 25), 2500 - 500);
    assert.equal(bytesBetween(samples, -1, 25), null);
  });
});
