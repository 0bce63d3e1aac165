import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkpointOptions } from '../../src/cli/train_flags.js';
import type { TrainFlags } from '../../src/launch/worker_flags.js';
import { ConfigError } from '../../src/util/errors.js';

const flags = (f: Partial<TrainFlags>): TrainFlags => f as TrainFlags;

test('checkpoints are refused, naming the flag and the state they would lose, where they cannot resume the run', () => {
  const cases: Array<[Partial<TrainFlags>, RegExp]> = [
    [{ strategy: 'diloco', checkpointEvery: 10 }, /--checkpoint-every.*DiLoCo's state/],
    [{ strategy: 'local-sgd', resume: 'auto' }, /--resume.*local SGD's state/],
    [{ strategy: 'allreduce', compress: 'int8', checkpointEvery: 5 }, /--compress int8's error-feedback residuals/],
    [{ strategy: 'allreduce', compress: 'powersgd', resume: '/tmp/x' }, /--compress powersgd's error-feedback residuals/],
  ];
  for (const [f, message] of cases) {
    assert.throws(() => checkpointOptions(flags(f), '/tmp/run'), (e: unknown) => e instanceof ConfigError && message.test(e.message));
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
  assert.equal(checkpointOptions(flags({ strategy: 'diloco' }), '/tmp/run'), undefined);
});
