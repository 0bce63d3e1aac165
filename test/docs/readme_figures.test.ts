/**
 * Figures the README quotes from a deterministic computation are checked against it here, so a
 * change that moves them (the federated error moved from 0.3346 to 0.3471 once without the README
 * following) fails until the text says what the code gives. Timing figures are the benches' and are
 * marked there with where they were measured. A figure that training reaches depends on the
 * rounding of the CPU level the kernels run at (FMA contraction, vector widths): the README quotes
 * it per level, and the test checks the one of the level it runs at.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { fedavgInProcess } from '../../src/cluster/reference.js';
import { defaultLettersDir, loadLetters } from '../../src/data/letters.js';
import { nativeCpuTable } from '../../src/tensor/backends/native.js';
import { backend } from '../../src/tensor/dispatch.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

describe('README figures', () => {
  it('the federated job\'s final validation error at seed 0 is what 25 rounds of the in-process reference give at this CPU level', async () => {
    const quoted = /Final\s+validation error (0\.\d{4}) at seed 0 on the AVX-512 levels[^)]*\),\s+(0\.\d{4}) at `SMOLCLUSTER_CPU=avx2` and (0\.\d{4}) at `generic`/.exec(README);
    assert.ok(quoted, 'README.md quotes "Final validation error 0.xxxx at seed 0 on the AVX-512 levels (…), 0.xxxx at `SMOLCLUSTER_CPU=avx2` and 0.xxxx at `generic`"');
    const level = backend().name === 'native' ? nativeCpuTable()!.level : null;
    if (level === null || !['generic', 'avx2', 'avx512', 'avx512-vnni', 'avx512-bf16', 'amx'].includes(level)) {
      assert.fail(`README.md quotes no federated figure for ${level ?? `the ${backend().name} backend`}`);
    }
    const figure = level === 'generic' ? quoted[3] : level === 'avx2' ? quoted[2] : quoted[1];
    // bench/federated.ts's job: letters, 15 epochs per task, h = 20, eta = 1e-4, 25 rounds.
    const run = await fedavgInProcess(loadLetters(defaultLettersDir()), { rounds: 25, epochs: 15, hidden: 20, lr: 1e-4, seed: 0 });
    assert.equal(run.validationErrors[24].toFixed(4), figure, `README.md's federated figure at ${level}`);
  });
});
