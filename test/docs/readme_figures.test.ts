/**
 * Figures the README quotes from a deterministic computation are checked against it here, so a
 * change that moves them (the federated error moved from 0.3346 to 0.3471 once without the README
 * following) fails until the text says what the code gives. Timing figures are the benches' and are
 * marked there with where they were measured.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { fedavgInProcess } from '../../src/cluster/reference.js';
import { defaultLettersDir, loadLetters } from '../../src/data/letters.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

describe('README figures', () => {
  it('the federated job\'s final validation error at seed 0 is what 25 rounds of the in-process reference give', async () => {
    const quoted = /Final\s+validation error (0\.\d{4}) at seed 0/.exec(README);
    assert.ok(quoted, 'README.md quotes "Final validation error 0.xxxx at seed 0"');
    // bench/federated.ts's job: letters, 15 epochs per task, h = 20, eta = 1e-4, 25 rounds.
    const run = await fedavgInProcess(loadLetters(defaultLettersDir()), { rounds: 25, epochs: 15, hidden: 20, lr: 1e-4, seed: 0 });
    assert.equal(run.validationErrors[24].toFixed(4), quoted[1], 'README.md\'s federated figure');
  });
});
