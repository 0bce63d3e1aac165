/**
 * The launcher's liveness probe (src/launch/liveness.ts) against real child processes: one that
 * answers is never judged hung and still exits by itself when its work is done (the IPC channel
 * does not hold it); one that is stopped (SIGSTOP) or whose event loop is blocked is judged hung
 * after the deadline.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { probeLiveness } from '../../src/launch/liveness.js';

const LIVENESS = fileURLToPath(new URL('../../src/launch/liveness.js', import.meta.url));

/** A child that answers the probe, then runs `body` (its event loop's work). */
function child(body: string): ChildProcess {
  const script = `import { answerLivenessProbes } from ${JSON.stringify(LIVENESS)}; answerLivenessProbes(); ${body}`;
  return spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** Probes `c`; resolves with how long it was silent when judged hung, or null if it exited first. */
function watch(c: ChildProcess, deadlineMs: number): Promise<{ hungAfterMs: number | null; code: number | null }> {
  return new Promise((resolve) => {
    let hungAfterMs: number | null = null;
    probeLiveness(c, {
      everyMs: 25, deadlineMs, onHung: (ms) => {
        hungAfterMs = ms;
        c.kill('SIGKILL');
      },
    });
    c.on('exit', (code) => resolve({ hungAfterMs, code }));
  });
}

describe('liveness probe (real child processes)', () => {
  it('a child that answers is not judged hung, and exits by itself when its work is done', { timeout: 20_000 }, async () => {
    const start = Date.now();
    const r = await watch(child('setTimeout(() => {}, 800);'), 300);
    assert.deepEqual(r, { hungAfterMs: null, code: 0 });
    assert.ok(Date.now() - start < 10_000);
  });

  it('a child whose event loop is blocked is judged hung after the deadline', { timeout: 20_000 }, async () => {
    // It blocks after its first answer (a child is not judged before it answered once).
    const r = await watch(child('process.once("message", () => setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0), 50));'), 300);
    assert.ok(r.hungAfterMs !== null && r.hungAfterMs > 300, `hung after ${r.hungAfterMs} ms`);
  });

  it('a stopped child (SIGSTOP) is judged hung after the deadline', { timeout: 20_000 }, async () => {
    const c = child('setTimeout(() => {}, 30_000);');
    c.once('message', () => setTimeout(() => c.kill('SIGSTOP'), 50));
    const r = await watch(c, 300);
    assert.ok(r.hungAfterMs !== null && r.hungAfterMs > 300, `hung after ${r.hungAfterMs} ms`);
  });
});
