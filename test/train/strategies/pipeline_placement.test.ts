import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runSlowCluster } from '../../../bench/lib/slow_cluster.js';
import { cpuControllerAvailable } from '../../../src/validate/cpu_quota.js';
import { tempDir } from '../../helpers/cluster.js';

/**
 * Placement by measured speed (real worker processes on 127.0.0.1): rank 1's CPU time is cut to a
 * third of one CPU by a cgroup quota from the start, so its timed pass measures every layer ≈3×
 * slower, and the plan gives its stage fewer of gpt2's 8 layers (embeddings, 6 blocks, head) than
 * rank 0's. Unslowed, the cut is near 4 | 4 (this machine's noise moves it by a block).
 */
const cgroup = cpuControllerAvailable();

interface PipelineResult {
  pipeline: { placement: { ranges: [number, number][]; rank_speed: number[] } };
}

describe('pipeline placement follows a node slowed by a CPU quota', { timeout: 120_000 }, () => {
  const dir = tempDir('pipeline-slow');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the slowed rank measures itself slower and its stage gets fewer layers', { skip: cgroup ? false : 'no writable cgroup cpu controller (needs Linux and root)' }, async () => {
    const args = [
      '--model', 'gpt2-tiny', '--layers', '6', '--dataset', 'synthetic_text', '--context', '32', '--batch-size', '8', '--max-steps', '2',
      '--threads', '1', '--timeout', '60', '--pipeline-stages', '2', '--micro-batches', '4', '--name', 'slow', '--experiments-dir', dir,
    ];
    const r = await runSlowCluster({ args, workers: 2, slowRank: 1, fraction: 1 / 3, metricsFile: join(dir, 'slow', 'metrics.jsonl'), timeoutMs: 100_000 });
    assert.deepEqual(r.codes, [0, 0], r.stderr.join('\n'));
    const result = JSON.parse(readFileSync(join(dir, 'slow', 'result.json'), 'utf8')) as PipelineResult;
    const { ranges, rank_speed: speed } = result.pipeline.placement;
    const layers = ranges.map(([a, b]) => b - a);
    process.stdout.write(`# ${r.slowedBy}: rank speeds ${speed.join(' / ')}, layers per stage ${layers.join(' | ')}\n`);
    assert.ok(speed[1] < 0.6 * speed[0], `rank 1 (a third of a CPU) measured speed ${speed[1]} against rank 0's ${speed[0]}`);
    assert.ok(layers[1] < layers[0], `the slowed stage holds ${layers[1]} layers, the other ${layers[0]}`);
    assert.match(r.stderr[0], /pipeline placement/, 'rank 0 prints the plan');
  });
});
