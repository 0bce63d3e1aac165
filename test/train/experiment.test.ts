import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { claimNamedRun, experimentName } from '../../src/train/experiment.js';

const root = mkdtempSync(join(tmpdir(), 'smolcluster-experiment-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('experimentName', () => {
  const at = new Date('2026-11-23T09:01:39.123Z');

  it('is the model, the UTC second and a random suffix', () => {
    assert.match(experimentName('mlp', at), /^mlp-20261123-090139Z-[0-9a-f]{6}$/);
  });

  it('never gives two runs started in the same second the same folder', () => {
    const names = new Set(Array.from({ length: 200 }, () => experimentName('mlp', at)));
    assert.equal(names.size, 200);
  });

  it('never picks a name whose folder exists: it draws again', () => {
    const dir = join(root, 'taken');
    mkdirSync(join(dir, 'mlp-20261123-090139Z-aaaaaa'), { recursive: true });
    const draws = ['aaaaaa', 'bbbbbb'];
    assert.equal(experimentName('mlp', at, dir, () => draws.shift()!), 'mlp-20261123-090139Z-bbbbbb');
  });
});

describe('claimNamedRun', () => {
  const withRun = (name: string): string => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'metrics.jsonl'), '{}\n');
    return dir;
  };

  it('refuses a --name whose folder holds a run, naming the folder and the ways out', () => {
    const dir = withRun('used');
    assert.throws(() => claimNamedRun(dir, {}), (e: Error) => {
      assert.match(e.message, /--name/);
      assert.ok(e.message.includes(dir), e.message);
      assert.match(e.message, /metrics\.jsonl/);
      assert.match(e.message, /--resume auto/);
      assert.match(e.message, /--overwrite/);
      return true;
    });
    assert.ok(existsSync(join(dir, 'metrics.jsonl')));
  });

  it('lets --resume continue it, untouched', () => {
    const dir = withRun('resumed');
    claimNamedRun(dir, { resume: 'auto' });
    assert.ok(existsSync(join(dir, 'metrics.jsonl')));
  });

  it('lets --overwrite replace it: the old run is removed', () => {
    const dir = withRun('replaced');
    claimNamedRun(dir, { overwrite: true });
    assert.equal(existsSync(dir), false);
  });

  it('accepts a name that is new, or an empty folder', () => {
    claimNamedRun(join(root, 'new'), {});
    mkdirSync(join(root, 'empty'));
    claimNamedRun(join(root, 'empty'), {});
  });
});
