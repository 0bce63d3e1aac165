#!/usr/bin/env node
/**
 * Records every rank's local gradient norm at every step of a healthy in-process allreduce run (the
 * real training loop, the norms the monitors see) into a little-endian float32 file, rank-major per
 * step, for test/train/loop/grad_outlier.test.ts to replay the gradient-outlier rule over.
 *
 *   node scripts/record-grad-norms.mjs OUT.f32 --model mlp --dataset mnist --workers 2 --batch-size 16 [--max-steps N] [--epochs E] [--width W] [--context T]
 *
 * Without --max-steps the run is the config's full length (the README quick start: 2 epochs).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createInProcessTransports } from '../dist/src/comm/inproc.js';
import { ProcessGroup } from '../dist/src/comm/process_group.js';
import { defaultConfig } from '../dist/src/train/config.js';
import { train } from '../dist/src/train/loop.js';
import { HEALTH_WIDTH, RunMonitors } from '../dist/src/train/monitors.js';
import { loadTrainData } from '../dist/src/train/run.js';
import { AllReduceStrategy } from '../dist/src/train/strategies/allreduce.js';

const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string', default: 'mlp' }, dataset: { type: 'string', default: 'mnist' }, workers: { type: 'string', default: '2' },
    'batch-size': { type: 'string', default: '16' }, 'max-steps': { type: 'string', default: '0' }, epochs: { type: 'string' },
    width: { type: 'string' }, context: { type: 'string' },
  },
});
const world = Number(a.workers);
const base = defaultConfig(a.model);
const config = { ...base, dataset: a.dataset, batchSize: Number(a['batch-size']), maxSteps: Number(a['max-steps']), epochs: Number(a.epochs ?? base.epochs) };
if (a.width) config.width = Number(a.width);
if (a.context) config.context = Number(a.context);
const data = loadTrainData(config);
const rows = [];
await Promise.all(createInProcessTransports(world, { timeoutMs: 600_000 }).map((t, rank) => {
  const strategy = new AllReduceStrategy(new ProcessGroup(t, { timeoutMs: 600_000 }), { checksumEvery: 0 });
  const monitors = new RunMonitors(rank, world, null, true);
  const check = monitors.checkHealth.bind(monitors);
  monitors.checkHealth = (step, health, ranks) => {
    if (rank === 0) for (let r = 0; r < world; r++) rows.push(health[r * HEALTH_WIDTH + 2]);
    check(step, health, ranks);
  };
  return train(config, data, strategy, {}, { monitors });
}));
writeFileSync(positionals[0], new Uint8Array(Float32Array.from(rows).buffer));
console.log(`${positionals[0]}: ${rows.length / world} steps × ${world} ranks`);
