import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkpointOptions } from '../../src/cli/train_flags.js';
import type { TrainFlags } from '../../src/launch/worker_flags.js';
import { ConfigError } from '../../src/util/errors.js';

const flags = (f: Partial<TrainFlags>): TrainFlags => f as TrainFlags;

test('DiLoCo, local SGD and int8 / PowerSGD error feedback keep checkpoints (each rank its own state)', () => {
  for (const f of [{ strategy: 'diloco', checkpointEvery: 10 }, { strategy: 'local-sgd', resume: 'auto' }, { strategy: 'allreduce', compress: 'int8', checkpointEvery: 5 },
    { strategy: 'allreduce', compress: 'powersgd', resume: '/tmp/x' }] as Array<Partial<TrainFlags>>) {
    assert.ok(checkpointOptions(flags(f), '/tmp/run'), JSON.stringify(f));
  }
});

test('async-ps: only the server reads the checkpoint (its workers take their state from it)', () => {
  const f = flags({ strategy: 'async-ps', resume: 'auto', checkpointEvery: 10 });
  assert.equal(checkpointOptions(f, '/tmp/run', 0)?.resume, 'auto');
  assert.equal(checkpointOptions(f, '/tmp/run', 1)?.resume, undefined);
  assert.equal(checkpointOptions(f, '/tmp/run', 1)?.every, 10);
  assert.equal(checkpointOptions(flags({ strategy: 'ps', resume: 'auto' }), '/tmp/run', 1)?.resume, 'auto');
});

test('allreduce without lossy state, and fp16 compression, keep their checkpoints', () => {
  assert.equal(checkpointOptions(flags({ strategy: 'allreduce', compress: 'fp16', checkpointEvery: 5 }), '/tmp/run')?.every, 5);
  // Checkpoints are on by default (issue 33 §2); --checkpoint-every 0 without --resume turns them off.
  assert.equal(checkpointOptions(flags({ strategy: 'diloco' }), '/tmp/run')?.every, 500);
  assert.equal(checkpointOptions(flags({ strategy: 'diloco', checkpointEvery: 0 }), '/tmp/run'), undefined);
});
