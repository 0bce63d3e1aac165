import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { endLiveDashboard } from '../../src/dashboard/live.js';

function fakeDashboard(): { url: string; closed: number; close(): Promise<void> } {
  return { url: 'http://127.0.0.1:3000/', closed: 0, async close() { this.closed++; } };
}

describe('the live dashboard at the end of a run', () => {
  it('without a terminal (scripts, tests) it closes at once', async () => {
    const d = fakeDashboard();
    await endLiveDashboard(d, 'experiments/x', false);
    assert.equal(d.closed, 1);
  });

  it('in a terminal it keeps serving until Ctrl-C', async () => {
    const d = fakeDashboard();
    const ended = endLiveDashboard(d, 'experiments/x', true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(d.closed, 0, 'still serving after the run');
    process.emit('SIGINT');
    await ended;
    assert.equal(d.closed, 1);
  });
});
