/**
 * Where a ps worker applies the server's averaged gradient (ps_host_replica.ts psUpdater): the
 * boundary decides, not a device name. Where the host maps the arena (the cpu) the model's own
 * optimizer updates it in place; where it does not (far_device.ts stands in for a GPU) a host
 * replica with a clone of the optimizer updates, and its weights go to the device at the flush.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ArenaEntry, ParamArena } from '../../../src/nn/arena.js';
import { SGD } from '../../../src/nn/optim/sgd.js';
import '../../../src/tensor/dispatch.js'; // registers the cpu device
import { mappedMemory } from '../../../src/tensor/boundary/host_values.js';
import { deviceMemory } from '../../../src/tensor/storage.js';
import { hostArena } from '../../../src/train/boundary/host_arena.js';
import { HostReplica, psUpdater } from '../../../src/train/strategies/ps_host_replica.js';
import { far } from '../../helpers/far_device.js';

const ENTRIES: ArenaEntry[] = [{ name: 'w', shape: [3], offset: 0, size: 3, decay: true }];

function cpuArena(values: number[]): ParamArena {
  const memory = deviceMemory('cpu');
  return ParamArena.over(memory.fromHost(Float32Array.from(values)), memory.fromHost(new Float32Array(values.length)), ENTRIES);
}

describe('psUpdater', () => {
  it('host memory: the model\'s optimizer updates the arena in place; the received gradient is held apart until the update', async () => {
    const arena = cpuArena([1, 2, 3]);
    const sgd = new SGD(arena, { lr: 0.1 });
    const updates = psUpdater(arena, sgd);
    assert.equal(updates instanceof HostReplica, false);
    assert.equal(updates.optimizer, sgd);
    assert.equal(updates.weightsToOverwrite(), mappedMemory(arena.params), 'weights are received into the arena itself');
    arena.grads.write([9, 9, 9]); // the local gradient, which the loop measures until the update
    updates.grads.set([2, 2, 2]);
    assert.deepEqual([...(await arena.grads.read())], [9, 9, 9]);
    updates.step(0.5);
    updates.upload();
    assert.deepEqual([...(await arena.params.read())], [0, 1, 2]);
  });

  it('memory the host cannot map: a host replica takes the weights, steps a clone of the optimizer and uploads at the flush', async () => {
    const arena = ParamArena.over(far([1, 2, 3]), far([0, 0, 0]), ENTRIES);
    const updates = psUpdater(arena, new SGD(cpuArena([0, 0, 0]), { lr: 0.1 }));
    assert.ok(updates instanceof HostReplica);
    await updates.adopt();
    assert.deepEqual([...updates.weightsToOverwrite()], [1, 2, 3]);
    updates.grads.set([2, 2, 2]);
    updates.step(0.5);
    updates.upload();
    assert.deepEqual((arena.params as ReturnType<typeof far>).peek(), [1, 2, 3], 'nothing reaches the device before the flush');
    hostArena(arena).flush();
    assert.deepEqual((arena.params as ReturnType<typeof far>).peek(), [0, 1, 2]);
  });
});
