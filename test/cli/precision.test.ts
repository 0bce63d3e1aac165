/**
 * --precision end to end (child processes, real sockets on 127.0.0.1): `train --precision auto`
 * says its choice once and writes it, with why, to result.json and config.json; in a cluster rank 0's
 * choice is every rank's (each rank's worker_joined event says what its ops compute in), under
 * allreduce and ps; --save-dtype writes a bf16 safetensors and refuses a non-safetensors --save.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readSafetensors } from '../../src/nn/interchange/safetensors.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'smol-precision-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SMALL = ['--dataset', 'synthetic-regression', '--hidden', '8', '--batch-size', '32', '--max-steps', '4', '--threads', '1', '--experiments-dir', dir, '--checksum-every', '0'];
const readJson = (file: string): Record<string, any> => JSON.parse(readFileSync(file, 'utf8'));
const events = (name: string): Record<string, any>[] => readFileSync(join(dir, name, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const autoLines = (stderr: string): string[] => stderr.split('\n').filter((l) => l.includes('precision auto:'));

describe('--precision (CLI)', () => {
  it('train --precision auto: the choice and why printed once, in result.json and config.json; --save-dtype bf16 writes BF16', async () => {
    const save = join(dir, 'm.safetensors');
    const r = await runCli(['train', ...SMALL, '--precision', 'auto', '--name', 'auto1', '--save', save, '--save-dtype', 'bf16']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(autoLines(r.stderr).length, 1, r.stderr);
    const result = readJson(join(dir, 'auto1', 'result.json'));
    assert.ok(result.precision === 'fp32' || result.precision === 'bf16', result.precision);
    const auto = result.precision_auto;
    assert.equal(auto.chose, result.precision);
    assert.ok(Array.isArray(auto.instructions) && typeof auto.reason === 'string' && auto.reason.length > 0);
    // Timed exactly when bf16 instructions were found.
    assert.equal(auto.fp32_ms === null, auto.instructions.length === 0);
    assert.ok(autoLines(r.stderr)[0].includes(`precision auto: ${auto.chose} (${auto.reason})`));
    const config = readJson(join(dir, 'auto1', 'config.json'));
    assert.equal(config.precision, result.precision);
    assert.equal(config.precision_auto.reason, auto.reason);
    assert.equal(result.config.precision, result.precision);
    assert.deepEqual(events('auto1').filter((e) => e.kind === 'worker_joined').map((e) => e.precision), [result.precision]);
    const dtypes = new Set([...readSafetensors(save).tensors.values()].map((t) => t.dtype));
    assert.deepEqual([...dtypes], ['BF16']);
  });

  it('train --workers 2 --precision auto: rank 0 decides and says so once; both ranks compute in its choice', async () => {
    const r = await runCli(['train', ...SMALL, '--workers', '2', '--precision', 'auto', '--name', 'auto2']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(autoLines(r.stderr).length, 1, r.stderr);
    const result = readJson(join(dir, 'auto2', 'result.json'));
    assert.equal(result.precision_auto.chose, result.precision);
    const joined = events('auto2').filter((e) => e.kind === 'worker_joined');
    assert.deepEqual(joined.map((e) => e.precision).sort(), [result.precision, result.precision]);
  });

  it('train --workers 2 --strategy ps --precision bf16: every process (the server too) computes in bf16, recorded', async () => {
    const r = await runCli(['train', ...SMALL, '--workers', '2', '--strategy', 'ps', '--precision', 'bf16', '--name', 'ps-bf16']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(autoLines(r.stderr).length, 0);
    const result = readJson(join(dir, 'ps-bf16', 'result.json'));
    assert.equal(result.precision, 'bf16');
    assert.equal('precision_auto' in result, false);
    const joined = events('ps-bf16').filter((e) => e.kind === 'worker_joined');
    assert.ok(joined.length >= 2 && joined.every((e) => e.precision === 'bf16'), JSON.stringify(joined));
  });

  it('--precision bf16 reaches every process of every other strategy (worker_joined of each rank), and run records it in run.json', async () => {
    const cases: [string, string[]][] = [
      ['async-ps', ['--workers', '2', '--strategy', 'async-ps']],
      ['diloco', ['--workers', '2', '--strategy', 'diloco', '--inner-steps', '2']],
      ['overlap-accum', ['--workers', '2', '--overlap', '--grad-accum', '2']],
      ['elastic', ['--workers', '2', '--elastic', '--timeout', '10']],
      ['tp', ['--workers', '2', '--tensor-parallel', '2', '--model', 'gpt2-tiny', '--dataset', 'synthetic_text', '--context', '16', '--batch-size', '2', '--layers', '1', '--max-steps', '2']],
    ];
    for (const [name, args] of cases) {
      const r = await runCli(['train', ...SMALL, ...args, '--precision', 'bf16', '--name', name], { timeoutMs: 120_000 });
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      const joined = events(name).filter((e) => e.kind === 'worker_joined');
      assert.ok(joined.length >= 2, `${name}: ${joined.length} ranks joined`);
      assert.deepEqual(joined.map((e) => e.precision), joined.map(() => 'bf16'), name);
      assert.equal(readJson(join(dir, name, 'result.json')).precision, 'bf16', name);
    }
    const out = join(dir, 'run.json');
    const run = await runCli(['run', '--steps', '3', '--precision', 'bf16', '--experiments-dir', dir, '--output', out]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(readJson(out).environment.precision, 'bf16');
  });

  it('--save-dtype bf16 without a .safetensors --save is a one-line error naming the flag; a bad --precision names its choices', async () => {
    const r = await runCli(['train', ...SMALL, '--name', 'bad', '--save', join(dir, 'm.bin'), '--save-dtype', 'bf16']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--save-dtype.*bf16 is written to safetensors only/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    const p = await runCli(['train', '--precision', 'fp16']);
    assert.notEqual(p.code, 0);
    assert.match(p.stderr, /--precision.*expected one of fp32, bf16, auto/);
  });
});
