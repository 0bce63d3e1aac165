import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { procCpuSource } from '../../src/balance/cpu_source.js';

describe('procCpuSource (this process)', () => {
  it('the thread\'s time on a CPU grows with its work; a quota is a positive number of CPUs or none', { skip: !existsSync('/proc/self/schedstat') && 'no /proc/self/schedstat' }, () => {
    const source = procCpuSource();
    const before = source.times()!;
    const cpu0 = source.processCpuMs();
    let x = 0;
    for (let i = 0; i < 5e6; i++) x += Math.sqrt(i);
    const after = source.times()!;
    assert.ok(x > 0);
    assert.ok(after.runMs > before.runMs, `${before.runMs} → ${after.runMs}`);
    assert.ok(after.queuedMs >= before.queuedMs);
    assert.ok(source.processCpuMs() > cpu0);
    const quota = source.quotaCpus();
    assert.ok(quota === null || quota > 0, `quota ${quota}`);
  });
});
