/**
 * untilFirstWeights (serve --follow's wait): it says once why it waits while the run is not there
 * yet or holds no weights, resolves once weights land, gives up when stopped, and refuses at once
 * a run it cannot read.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { saveModel } from '../../src/nn/checkpoint.js';
import type { ModelSpec } from '../../src/nn/models/index.js';
import { untilFirstWeights } from '../../src/serve/follow.js';
import { tempDir } from '../helpers/cluster.js';
import { randomModel } from '../generate/families.js';

const SPEC: ModelSpec = { type: 'gpt2', vocabSize: 256, context: 16, layers: 1, width: 8, heads: 2, dropout: 0 };
const never = new Promise<void>(() => {});

describe('untilFirstWeights', () => {
  it('waits through a missing folder and a run without weights, telling why once, and resolves when weights land', async () => {
    const run = join(tempDir('follow-wait'), 'experiments', 'run');
    const told: string[] = [];
    const waiting = untilFirstWeights(run, 10, never, (why) => told.push(why));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(told, [`${run} holds no run yet`]);
    mkdirSync(run, { recursive: true });
    writeFileSync(join(run, 'config.json'), JSON.stringify({ schema: 'smolcluster-config', tokenizer: 'bytes' }));
    await new Promise((r) => setTimeout(r, 50));
    await saveModel(join(run, 'model.smol'), randomModel(SPEC, 1), SPEC);
    writeFileSync(join(run, 'events.jsonl'), `${JSON.stringify({ kind: 'model_saved', file: join(run, 'model.smol'), step: 3 })}\n`);
    assert.equal(await waiting, true);
    // Told once, while nothing was there: a run without weights is the same wait.
    assert.deepEqual(told, [`${run} holds no run yet`]);
  });

  it('gives up when stopped; refuses at once a run it cannot read', async () => {
    const dir = tempDir('follow-refuse');
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const waiting = untilFirstWeights(join(dir, 'later'), 10_000, stopped, () => {});
    stop();
    assert.equal(await waiting, false);
    mkdirSync(join(dir, 'broken'));
    writeFileSync(join(dir, 'broken', 'config.json'), '{"schema": ');
    await assert.rejects(untilFirstWeights(join(dir, 'broken'), 10, never, () => {}), /broken\/config\.json/);
  });
});
