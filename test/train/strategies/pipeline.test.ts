import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TEST_TOKEN, freePort, runAll, runCliProcess, tempDir } from '../../helpers/cluster.js';

/**
 * `train --workers 2 --pipeline-stages 2 --micro-batches 4` with real processes on 127.0.0.1: the
 * two stages of gpt2-tiny (its head tied to the embedding) give every step the loss one process
 * gives, under GPipe and 1F1B (and llama-tiny's, untied, under 1F1B); evaluation runs through the pipeline and reaches rank 0's
 * result.json with the placement, the measured bubble and the live micro-batches per stage. A
 * stage killed mid-run ends the run naming it; the run resumes from each stage's checkpoint and
 * retakes the same steps.
 */
let dir = '';
before(() => {
  dir = tempDir('pipeline');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const STEPS = 6;

/** Every step's loss per rank, from the run's metrics.jsonl. */
function losses(name: string): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const line of readFileSync(join(dir, name, 'metrics.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as { kind?: string; rank?: number; step?: number; loss?: number };
    if (r.kind !== 'step' || r.rank === undefined || r.loss === undefined || r.step === undefined) continue;
    const list = out.get(r.rank) ?? [];
    list[r.step] = r.loss;
    out.set(r.rank, list);
  }
  return out;
}

interface Result {
  test_loss: number;
  parameters: number;
  pipeline: { bubble_fraction: number; ideal_bubble_fraction: number; peak_live_micro_batches: number[]; placement: { ranges: [number, number][] } };
}

const result = (name: string): Result => JSON.parse(readFileSync(join(dir, name, 'result.json'), 'utf8')) as Result;

const common = (name: string, extra: string[], model = 'gpt2-tiny'): string[] => [
  'train', '--model', model, '--dataset', 'synthetic_text', '--context', '32', '--batch-size', '8', '--max-steps', String(STEPS),
  '--threads', '1', '--timeout', '30', '--experiments-dir', dir, '--name', name, ...extra,
];

async function train(name: string, extra: string[], model?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCliProcess(common(name, extra, model), { timeoutMs: 120_000 });
}

const pipeline = (schedule: string): string[] => ['--workers', '2', '--pipeline-stages', '2', '--micro-batches', '4', '--pipeline-schedule', schedule];

function sameLosses(name: string, one: number[], ranks = [0, 1], from = 0): void {
  const got = losses(name);
  for (const rank of ranks) {
    const list = got.get(rank);
    assert.ok(list, `${name}: rank ${rank} recorded no steps`);
    for (let step = from; step < STEPS; step++) {
      const loss = list[step];
      assert.ok(loss !== undefined && Math.abs(loss - one[step]) <= 1e-5 * one[step], `${name} rank ${rank} step ${step}: ${loss} vs one process's ${one[step]}`);
    }
  }
}

describe('pipeline parallelism through train --workers (real processes)', { timeout: 300_000 }, () => {
  it('gpipe and 1f1b give every step the loss one process gives (1e-5 relative), and the same test loss', async () => {
    const runs = await Promise.all([train('one', []), train('gpipe', pipeline('gpipe')), train('1f1b', pipeline('1f1b'))]);
    runs.forEach((r) => assert.equal(r.code, 0, r.stderr));
    const one = losses('one').get(0)!;
    assert.equal(one.length, STEPS);
    const single = result('one');
    for (const name of ['gpipe', '1f1b']) {
      sameLosses(name, one);
      const r = result(name);
      assert.ok(Math.abs(r.test_loss - single.test_loss) <= 1e-5 * single.test_loss, `${name}: test loss ${r.test_loss} vs ${single.test_loss}`);
      assert.equal(r.parameters, single.parameters, `${name}: the stages' parameters add up to the model's (the tied copy counted once)`);
      const p = r.pipeline;
      assert.ok(p.bubble_fraction > 0 && p.bubble_fraction < 1, `${name}: bubble ${p.bubble_fraction}`);
      process.stdout.write(`# ${name}: measured bubble ${p.bubble_fraction.toFixed(3)} (ideal ${p.ideal_bubble_fraction.toFixed(3)}), live micro-batches per stage ${p.peak_live_micro_batches.join(', ')}, layers ${JSON.stringify(p.placement.ranges)}\n`);
    }
    // Stage 0 holds at most P = 2 micro-batches' activations under 1F1B, all M = 4 under GPipe.
    assert.deepEqual(result('1f1b').pipeline.peak_live_micro_batches, [2, 1]);
    assert.deepEqual(result('gpipe').pipeline.peak_live_micro_batches, [4, 4]);
  });

  it('llama-tiny (its own lm_head on the last stage) under 1f1b: every step\'s loss and the test loss one process gives', async () => {
    const runs = await Promise.all([train('llama-one', [], 'llama-tiny'), train('llama-1f1b', pipeline('1f1b'), 'llama-tiny')]);
    runs.forEach((r) => assert.equal(r.code, 0, r.stderr));
    sameLosses('llama-1f1b', losses('llama-one').get(0)!);
    const [single, r] = [result('llama-one'), result('llama-1f1b')];
    assert.ok(Math.abs(r.test_loss - single.test_loss) <= 1e-5 * single.test_loss, `test loss ${r.test_loss} vs ${single.test_loss}`);
    assert.equal(r.parameters, single.parameters);
  });

  // What torchrun and srun give each process (MASTER_ADDR/PORT as a Slurm job script exports them).
  const placements = {
    torchrun: { source: 'RANK, WORLD_SIZE', vars: (rank: number): Record<string, string> => ({ RANK: String(rank), WORLD_SIZE: '2' }) },
    slurm: { source: 'SLURM_PROCID, SLURM_NTASKS', vars: (rank: number): Record<string, string> => ({ SLURM_PROCID: String(rank), SLURM_NTASKS: '2', SLURM_LOCALID: String(rank) }) },
  };
  for (const [launcher, placement] of Object.entries(placements)) {
    it(`worker processes placed by ${launcher}'s variables run the 2-stage pipeline: every step is one process's`, async () => {
      const port = await freePort();
      const env = (rank: number): Record<string, string> => ({
        SMOLCLUSTER_TOKEN: TEST_TOKEN, MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), ...placement.vars(rank),
      });
      // `worker` takes the training flags `train` takes, less --workers (the world size comes from the environment).
      const args = ['worker', ...common(launcher, ['--pipeline-stages', '2', '--micro-batches', '4', '--pipeline-schedule', '1f1b']).slice(1)];
      const one = `${launcher}-one`;
      const [single, r0, r1] = await Promise.all([
        train(one, []),
        ...(await runAll([{ args, env: env(0) }, { args, env: env(1) }], 120_000)),
      ]);
      for (const [what, r] of [['one process', single], ['rank 0', r0], ['rank 1', r1]] as const) assert.equal(r.code, 0, `${what}: ${r.stderr}`);
      assert.match(r1.stderr, new RegExp(`rank 1 of 2 \\(${placement.source}\\)`), 'the placement came from the launcher\'s variables');
      sameLosses(launcher, losses(one).get(0)!);
      const r = result(launcher);
      assert.equal(r.pipeline.placement.ranges.length, 2, 'two stages were planned');
      assert.ok(Math.abs(r.test_loss - result(one).test_loss) <= 1e-5 * result(one).test_loss, `test loss ${r.test_loss}`);
    });
  }

  it('4 workers = 2 data-parallel replicas × 2 stages: every step\'s loss is one process\'s at the global batch 2 × 8', async () => {
    const [one, mesh] = await Promise.all([
      train('one16', ['--batch-size', '16', '--max-steps', '3']),
      train('dp2pp2', ['--workers', '4', '--pipeline-stages', '2', '--micro-batches', '2', '--max-steps', '3']),
    ]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(mesh.code, 0, mesh.stderr);
    const want = losses('one16').get(0)!;
    const got = losses('dp2pp2');
    for (const rank of [0, 1, 2, 3]) {
      for (let step = 0; step < 3; step++) {
        const loss = got.get(rank)?.[step];
        assert.ok(loss !== undefined && Math.abs(loss - want[step]) <= 1e-5 * want[step], `rank ${rank} step ${step}: ${loss} vs ${want[step]}`);
      }
    }
  });

  it('4 workers = 2 stages × --tensor-parallel 2 (a Megatron-split GPT-2 inside each stage): every step\'s loss and the test loss are one process\'s', async () => {
    const [one, mesh] = await Promise.all([
      train('one3', ['--max-steps', '3']),
      train('pptp', ['--workers', '4', '--pipeline-stages', '2', '--tensor-parallel', '2', '--micro-batches', '4', '--max-steps', '3']),
    ]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(mesh.code, 0, mesh.stderr);
    const want = losses('one3').get(0)!;
    const got = losses('pptp');
    for (const rank of [0, 1, 2, 3]) {
      for (let step = 0; step < 3; step++) {
        const loss = got.get(rank)?.[step];
        assert.ok(loss !== undefined && Math.abs(loss - want[step]) <= 1e-5 * want[step], `rank ${rank} step ${step}: ${loss} vs ${want[step]}`);
      }
    }
    const r = result('pptp');
    const single = result('one3');
    assert.ok(Math.abs(r.test_loss - single.test_loss) <= 1e-5 * single.test_loss, `test loss ${r.test_loss} vs ${single.test_loss}`);
    assert.equal(r.parameters, single.parameters, 'the shards of the stages add up to the whole model');
    assert.equal((r as unknown as { per_rank: { samples: number }[] }).per_rank.reduce((n, p) => n + p.samples, 0), 3 * 8, 'each sample counted once');
  });

  it('8 workers = 2 data-parallel replicas × 2 stages × --tensor-parallel 2, one mesh: every step and the test loss are one process\'s at the global batch 2 × 8', async () => {
    const [one, mesh] = await Promise.all([
      train('one16-mesh', ['--batch-size', '16']),
      train('dp2pp2tp2', ['--batch-size', '8', '--workers', '8', '--pipeline-stages', '2', '--tensor-parallel', '2', '--micro-batches', '4']),
    ]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(mesh.code, 0, mesh.stderr);
    sameLosses('dp2pp2tp2', losses('one16-mesh').get(0)!, [0, 1, 2, 3, 4, 5, 6, 7]);
    const single = result('one16-mesh');
    const r = result('dp2pp2tp2');
    assert.ok(Math.abs(r.test_loss - single.test_loss) <= 1e-5 * single.test_loss, `test loss ${r.test_loss} vs ${single.test_loss}`);
    assert.match(mesh.stdout, /with 8 workers, 2 data-parallel \(allreduce\+pp2\+tp2\)/);
  });

  it('a stage killed at step 3 ends the run naming it; --resume auto retakes the steps from the step-2 checkpoints', async () => {
    const ckpt = ['--checkpoint-every', '2'];
    const cut = await train('cut', [...pipeline('1f1b'), ...ckpt, '--fault', 'kill:rank=1:step=3', '--timeout', '10']);
    assert.notEqual(cut.code, 0, 'the killed stage should end the run');
    assert.match(cut.stderr, /rank 1/, 'the error names the lost rank');
    const resumed = await train('cut', [...pipeline('1f1b'), ...ckpt, '--resume', 'auto']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /pipeline placement \(the plan of the checkpoint resumed\)/);
    const events = readFileSync(join(dir, 'cut', 'events.jsonl'), 'utf8');
    assert.match(events, /"kind":"resumed","rank":0,"file":"[^"]*rank-0[/\\]ckpt-00000002\.smolckpt","step":2/);
    sameLosses('cut', losses('one').get(0)!, [0, 1], 2);
  });

  // --save works after a pipeline now (train/whole_model.test.ts), so it is no longer refused here.
  it('refuses stages that do not divide --workers, naming the flags', async () => {
    const odd = await runCliProcess(['train', '--model', 'gpt2-tiny', '--dataset', 'synthetic_text', '--workers', '3', '--pipeline-stages', '2', '--experiments-dir', dir], { timeoutMs: 30_000 });
    assert.notEqual(odd.code, 0);
    assert.match(odd.stderr, /--pipeline-stages 2: needs --workers a multiple of 2 \(got 3\)/);
  });
});
