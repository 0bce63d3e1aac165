/**
 * `smolcluster generate --stages 2` over quantized layers, as real processes (the driver and the
 * stage process it starts on 127.0.0.1): a Q8_0 GGUF file, its byte-level tokenizer read from the
 * file's metadata by the driver, prints what one process prints from the file; and a float
 * safetensors file with --quantize q4_0, which the stage process is started with too, prints what
 * one process prints with the same --quantize and names the same quantized bytes; an MLX 4-bit
 * folder, whose stage process reads its own layers' groups, prints what one process prints.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exportGguf } from '../../src/nn/interchange/gguf_export.js';
import { saveSafetensors } from '../../src/nn/interchange/model_io.js';
import type { LlamaSpec } from '../../src/nn/models/index.js';
import { randomModel } from '../generate/families.js';
import { CLI } from '../helpers/cli.js';
import { tempDir } from '../helpers/cluster.js';
import { writeMlxFolder } from '../helpers/mlx_folder.js';

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 256, context: 64, layers: 3, width: 32, intermediate: 64, heads: 4, kvHeads: 2, headDim: 8,
  ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
};

/** GPT-2's byte-level alphabet: the character that spells byte b in a byte-level BPE vocabulary. */
function byteCharacters(): string[] {
  const printable = (b: number): boolean => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCharCode(printable(b) ? b : next++));
}

/** A byte-level BPE tokenizer.json of the 256 bytes and no merges: text is its bytes. */
function writeByteTokenizer(dir: string): string {
  const path = join(dir, 'tokenizer.json');
  writeFileSync(path, JSON.stringify({ model: { type: 'BPE', vocab: Object.fromEntries(byteCharacters().map((c, i) => [c, i])), merges: [] }, pre_tokenizer: { type: 'ByteLevel' } }));
  return path;
}

function generateCli(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => execFile(process.execPath, [CLI, 'generate', '--prompt', 'ab', '--max-new-tokens', '6', ...args], { timeout: 45_000 },
    (e, stdout, stderr) => (e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve({ stdout, stderr }))));
}

describe('generate --stages 2 over quantized layers', { timeout: 90_000 }, () => {
  it('--model FILE.gguf (Q8_0): the tokenizer from the file\'s metadata, and what one process prints', async () => {
    const dir = tempDir('generate-stages-gguf');
    const file = join(dir, 'tiny-q8_0.gguf');
    await exportGguf(file, randomModel(SPEC, 41), SPEC, { quantize: 'q8_0', tokenizer: { json: writeByteTokenizer(dir) } });
    const [alone, split] = await Promise.all([generateCli(['--model', file]), generateCli(['--model', file, '--stages', '2'])]);
    assert.equal(split.stdout, alone.stdout);
    assert.ok(alone.stdout.trim().length > 0, 'one process prints a continuation');
    assert.match(split.stderr, /tokenizer .*tiny-q8_0\.gguf/);
    assert.match(split.stderr, /stage 1 \(rank 1 at 127\.0\.0\.1:\d+\): layers \d+\.\.\d+/);
    // Each stage says what it loads and when it has (issue 50: a pipeline was silent while loading).
    assert.match(split.stderr, /stage 0: loading layers \d+\.\.\d+ \([\d.]+ MiB\)\n[^]*stage 0: loaded layers \d+\.\.\d+ in [\d.]+ s/);
    assert.match(split.stderr, /\[stage 1\] smolcluster: stage 1: loading layers [^]*\[stage 1\] smolcluster: stage 1: loaded layers/);
    assert.match(split.stderr, /memory ≈ [\d.]+ GB .* over 2 stage processes; this machine has [\d.]+ GB available/);
  });

  it('--model MLX_FOLDER (4-bit): the stage process reads its layers\' groups, and the pipeline prints what one process prints', async () => {
    const dir = tempDir('generate-stages-mlx');
    const folder = join(dir, 'mlx-4bit');
    const spec = { ...SPEC, width: 64, intermediate: 128 };
    writeMlxFolder(folder, randomModel(spec, 43), spec, { quantization: { group_size: 64, bits: 4 } });
    const [alone, split] = await Promise.all([generateCli(['--model', folder, '--tokenizer', 'bytes']), generateCli(['--model', folder, '--tokenizer', 'bytes', '--stages', '2'])]);
    assert.equal(split.stdout, alone.stdout);
    assert.ok(alone.stdout.trim().length > 0, 'one process prints a continuation');
    assert.match(split.stderr, /\[stage 1\] smolcluster: stage 1: loaded layers \d+\.\.\d+/);
  });

  it('--quantize q4_0: the stage process quantizes its layers too, and the pipeline prints what one process prints', async () => {
    const file = join(tempDir('generate-stages-quantize'), 'tiny.safetensors');
    saveSafetensors(file, randomModel(SPEC, 42), SPEC);
    const args = ['--model', file, '--tokenizer', 'bytes', '--quantize', 'q4_0'];
    const [alone, split] = await Promise.all([generateCli(args), generateCli([...args, '--stages', '2'])]);
    assert.equal(split.stdout, alone.stdout);
    const loaded = (stderr: string): string | undefined => stderr.split('\n').find((l) => l.includes('; weights q4_0, '));
    assert.ok(loaded(alone.stderr), alone.stderr);
    assert.equal(loaded(split.stderr), loaded(alone.stderr), 'the same quantized bytes named');
  });
});
