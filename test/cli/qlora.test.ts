/**
 * LoRA over a quantized base through the CLI (QLoRA's way), as real processes:
 * - `train --init FILE.gguf --lora-rank r --workers 2`: two processes (all-reduce over TCP on
 *   127.0.0.1) train adapters over the file's frozen Q8_0 matrices; their losses are those of one
 *   float folder quantized at load with `--lora-base-dtype q8_0` (the same blocks), step for step;
 *   only the adapters' gradients travel, and the PEFT adapter folder names the file as its base;
 * - over 2 pipeline stages (`--pipeline-stages 2`) each process loads its layers of the file, and
 *   the losses and the adapter folder are one process's;
 * - `--merge-lora` over the file saves the float merge, or a GGUF file requantized to Q8_0, saying
 *   how much of the change each form keeps;
 * - a run over the file resumes from its checkpoint as an uninterrupted run goes on, in one process
 *   and over pipeline stages;
 * - the file's tokenizer is the run's by default (a text file tokenized by its metadata);
 * - an MLX quantized folder trains the same way (over 2 pipeline stages too, one process's losses),
 *   and a float folder quantized to NF4 at load;
 * - what cannot work is refused by flag: a quantized base without LoRA, quantizing a quantized
 *   file again, a strategy that builds the model from float weights.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadGenerator } from '../../src/generate/load_generator.js';
import { readGgufHeader } from '../../src/nn/interchange/gguf.js';
import { exportGguf } from '../../src/nn/interchange/gguf_export.js';
import { loadPretrained, saveFolder } from '../../src/nn/interchange/hf_folder.js';
import { readSafetensors } from '../../src/nn/index.js';
import { toFloat32 } from '../../src/nn/interchange/safetensors.js';
import { type LlamaSpec, createModel } from '../../src/nn/models/index.js';
import { runCli } from '../helpers/cli.js';
import { maxRelDiff, stepRecords, tempDir } from '../helpers/cluster.js';
import { mergeAdapterInto } from '../../src/nn/lora/index.js';
import type { Module } from '../../src/nn/module.js';
import { dequantize, quantize } from '../../src/tensor/ops/quant.js';
import { isQuantType } from '../../src/tensor/quant/formats.js';
import { writeMlxFolder } from '../helpers/mlx_folder.js';

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 256, context: 64, layers: 2, width: 64, intermediate: 128, heads: 4, kvHeads: 2, headDim: 16,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
};
const dir = tempDir('qlora-cli');
const model = createModel(SPEC, 5);
const folder = join(dir, 'float');
saveFolder(folder, model, SPEC);
const gguf = join(dir, 'tiny-q8_0.gguf');
const text = join(dir, 'plain.txt');
writeFileSync(text, Array.from({ length: 200 }, (_, i) => `line ${i}: the quick brown fox ${i % 7}.`).join('\n'));
const common = ['--lora-rank', '4', '--lora-targets', 'q_proj,v_proj,down_proj', '--context', '16', '--batch-size', '4', '--max-steps', '3', '--eval-every', '0', '--threads', '1', '--experiments-dir', dir];

/** GPT-2's byte-level alphabet: the character that spells byte b in a byte-level BPE vocabulary. */
function byteCharacters(): string[] {
  const printable = (b: number): boolean => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCharCode(printable(b) ? b : next++));
}

async function writeGguf(): Promise<void> {
  const tokenizer = join(dir, 'tokenizer.json');
  writeFileSync(tokenizer, JSON.stringify({ model: { type: 'BPE', vocab: Object.fromEntries(byteCharacters().map((c, i) => [c, i])), merges: [] }, pre_tokenizer: { type: 'ByteLevel' } }));
  await exportGguf(gguf, model, SPEC, { quantize: 'q8_0', tokenizer: { json: tokenizer } });
}

function losses(run: string, rank: number): (number | null)[] {
  return stepRecords(join(dir, run, 'metrics.jsonl'), rank).map((s) => s.loss);
}

describe('train over a quantized base (CLI)', { timeout: 240_000 }, () => {
  it('--init FILE.gguf with 2 workers: the losses of a float folder quantized at load, adapters only on the wire, a PEFT folder naming the file', async () => {
    await writeGguf();
    const adapter = join(dir, 'adapter');
    const [file, quantized] = await Promise.all([
      runCli(['train', '--init', gguf, '--dataset', 'synthetic_text', '--workers', '2', '--name', 'gguf', '--save', adapter, ...common], { timeoutMs: 200_000 }),
      runCli(['train', '--init', folder, '--lora-base-dtype', 'q8_0', '--dataset', 'synthetic_text', '--workers', '2', '--name', 'folder', ...common], { timeoutMs: 200_000 }),
    ]);
    assert.equal(file.code, 0, file.stderr);
    assert.equal(quantized.code, 0, quantized.stderr);
    assert.equal(losses('gguf', 0).length, 3);
    assert.deepEqual(losses('gguf', 0), losses('folder', 0), 'the same Q8_0 blocks, the same adapters, the same losses');
    assert.deepEqual(losses('gguf', 1), losses('gguf', 0), 'both ranks hold the same model');
    // q_proj 4·64 + 64·4, v_proj 4·64 + 32·4, down_proj 4·128 + 64·4; two layers; float32 on the wire.
    const adapterBytes = 4 * 2 * (4 * 64 + 64 * 4 + 4 * 64 + 32 * 4 + 4 * 128 + 64 * 4);
    for (const s of stepRecords(join(dir, 'gguf', 'metrics.jsonl'), 0) as unknown as Array<{ bytes_sent: number }>) {
      assert.ok(s.bytes_sent >= adapterBytes && s.bytes_sent < adapterBytes + 1024, `${s.bytes_sent} bytes a step`);
    }
    const config = JSON.parse(readFileSync(join(adapter, 'adapter_config.json'), 'utf8'));
    assert.deepEqual([config.r, config.target_modules, config.base_model_name_or_path], [4, ['q_proj', 'v_proj', 'down_proj'], gguf]);
    assert.equal(readSafetensors(join(adapter, 'adapter_model.safetensors')).tensors.size, 12);
  });

  it('--init FILE.gguf --workers 2 --pipeline-stages 2: each process loads its stage of the file, the losses and the adapter folder are one process\'s', async () => {
    const [stagedAdapter, singleAdapter] = [join(dir, 'staged-adapter'), join(dir, 'single-adapter')];
    const [staged, single] = await Promise.all([
      runCli(['train', '--init', gguf, '--dataset', 'synthetic_text', '--workers', '2', '--pipeline-stages', '2', '--micro-batches', '2', '--name', 'staged', '--save', stagedAdapter, ...common], { timeoutMs: 200_000 }),
      runCli(['train', '--init', gguf, '--dataset', 'synthetic_text', '--name', 'single', '--save', singleAdapter, ...common], { timeoutMs: 200_000 }),
    ]);
    assert.equal(staged.code, 0, staged.stderr);
    assert.equal(single.code, 0, single.stderr);
    assert.match(staged.stderr, /pipeline placement \(cut .* per weight of one block/);
    const [a, b] = [losses('staged', 0), losses('single', 0)];
    assert.equal(a.length, 3);
    a.forEach((l, i) => assert.ok(Math.abs(l! - b[i]!) <= 1e-5 * Math.abs(b[i]!), `step ${i + 1}: ${l} over stages, ${b[i]} in one process`));
    const weights = (folder: string): Float32Array => Float32Array.from([...readSafetensors(join(folder, 'adapter_model.safetensors')).tensors].flatMap(([name, t]) => Array.from(toFloat32('', name, t))));
    assert.ok(maxRelDiff(weights(stagedAdapter), weights(singleAdapter)) < 1e-5, `the adapters differ by ${maxRelDiff(weights(stagedAdapter), weights(singleAdapter))}`);
  });

  it('--merge-lora over a GGUF file saves the float merge, or a GGUF file requantized (--save-quantize), saying what each form keeps of the change', async () => {
    const [merged, mergedGguf] = [join(dir, 'merged'), join(dir, 'merged-q8_0.gguf')];
    const once = [...common.filter((a, i, all) => a !== '--max-steps' && all[i - 1] !== '--max-steps'), '--max-steps', '1'];
    const merge = (name: string, save: string[]) => runCli(['train', '--init', gguf, '--adapter', join(dir, 'adapter'), '--merge-lora', '--lr', '1e-9',
      '--dataset', 'synthetic_text', '--name', name, ...save, ...once], { timeoutMs: 120_000 });
    const [folderRun, ggufRun] = await Promise.all([merge('merge', ['--save', merged]), merge('merge-gguf', ['--save', mergedGguf, '--save-quantize', 'q8_0'])]);
    assert.equal(folderRun.code, 0, folderRun.stderr);
    assert.match(folderRun.stderr, /--merge-lora: the merged weights are saved in float; of the adapters' change they keep: the base's q8_0 \d+\.\d %, bf16 \d+\.\d %, q8_0 \d+\.\d %/);
    assert.equal(ggufRun.code, 0, ggufRun.stderr);
    assert.match(ggufRun.stderr, /saved in q8_0; of the adapters' change they keep: the file's q8_0 \d+\.\d %, the base's q8_0/);
    const { spec, model: float } = await loadPretrained(merged);
    assert.equal(spec.type, 'llama');
    // The file holds the merge requantized: each projection's blocks are the float merge's quantized
    // to Q8_0 (the same reference quantizer), and some of them moved off the base's.
    const header = await readGgufHeader(mergedGguf);
    assert.equal(header.tensors.get('blk.0.attn_q.weight')!.type, 'q8_0');
    const [fromFile, base] = await Promise.all([mergedGguf, gguf].map(async (f) => new Map((await loadGenerator(f)).model.namedParameters())));
    let moved = 0;
    for (const [name, p] of float.namedParameters()) {
      if (!/_proj\.weight$/.test(name)) continue;
      const got = dequantize(fromFile.get(name)!).values() as Float32Array;
      assert.deepEqual(got, dequantize(quantize(p, 'q8_0')).values(), `${name}: the file's blocks are the merge's, quantized`);
      const was = dequantize(base.get(name)!).values() as Float32Array;
      moved += got.filter((v, i) => v !== was[i]).length;
    }
    assert.ok(moved > 0, 'the merge moved some weights off the base\'s blocks');

    // `export --adapter` writes the same merge without a training run: the saved adapter merged into the
    // file's dequantized weights, requantized to Q8_0 weight by weight.
    const exported = join(dir, 'exported-q8_0.gguf');
    const ex = await runCli(['export', '--model', gguf, '--adapter', join(dir, 'adapter'), '--out', exported, '--quantize', 'q8_0'], { timeoutMs: 60_000 });
    assert.equal(ex.code, 0, ex.stderr);
    assert.match(ex.stderr, /--adapter: the merged weights are saved in q8_0; of the adapters' change they keep: the file's q8_0 \d+\.\d %/);
    const reference = (await loadGenerator(gguf)).model as unknown as Module;
    for (const [, p] of reference.namedParameters()) if (isQuantType(p.dtype)) p.holdFrozen(dequantize(p).storage);
    await mergeAdapterInto(join(dir, 'adapter'), reference);
    const written = new Map((await loadGenerator(exported)).model.namedParameters());
    for (const [name, p] of reference.namedParameters()) {
      if (!/_proj\.weight$/.test(name)) continue;
      assert.deepEqual(dequantize(written.get(name)!).values(), dequantize(quantize(p, 'q8_0')).values(), `${name}: exported blocks are the merge's, quantized`);
    }
  });

  it('--resume over a GGUF file continues where the checkpoint stood: the steps of an uninterrupted run', async () => {
    const run = (name: string, steps: number, resume: string[]): Promise<{ code: number | null; stderr: string }> => runCli(['train', '--init', gguf, '--dataset', 'synthetic_text',
      '--name', name, '--checkpoint-every', '2', '--schedule', 'constant', ...common.filter((a, i, all) => a !== '--max-steps' && all[i - 1] !== '--max-steps'), '--max-steps', String(steps), ...resume], { timeoutMs: 120_000 });
    const [whole, first] = await Promise.all([run('whole', 4, []), run('resumed', 2, [])]);
    assert.equal(whole.code, 0, whole.stderr);
    assert.equal(first.code, 0, first.stderr);
    const resumed = await run('resumed', 4, ['--resume', 'auto']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const steps = (name: string): Map<number, number | null> => new Map(stepRecords(join(dir, name, 'metrics.jsonl'), 0).map((s) => [s.step, s.loss]));
    const [a, b] = [steps('whole'), steps('resumed')];
    assert.equal(a.size, 4);
    // A constant rate: a longer --max-steps on resume would stretch a decaying schedule (issue 50's).
    assert.deepEqual([...b], [...a], 'the two steps before the checkpoint and the two after the resume are the uninterrupted run\'s');
  });

  it('--resume over pipeline stages of a GGUF file: each stage continues from its own checkpoint, the steps of an uninterrupted run', async () => {
    const staged = ['--workers', '2', '--pipeline-stages', '2', '--micro-batches', '2'];
    const run = (name: string, steps: number, resume: string[]): Promise<{ code: number | null; stderr: string }> => runCli(['train', '--init', gguf, '--dataset', 'synthetic_text',
      '--name', name, '--checkpoint-every', '2', '--schedule', 'constant', ...staged, ...common.filter((a, i, all) => a !== '--max-steps' && all[i - 1] !== '--max-steps'), '--max-steps', String(steps), ...resume], { timeoutMs: 200_000 });
    const [whole, first] = await Promise.all([run('staged-whole', 4, []), run('staged-resumed', 2, [])]);
    assert.equal(whole.code, 0, whole.stderr);
    assert.equal(first.code, 0, first.stderr);
    const resumed = await run('staged-resumed', 4, ['--resume', 'auto']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /pipeline placement \(the plan of the checkpoint resumed\)/);
    const steps = (name: string): Map<number, number | null> => new Map(stepRecords(join(dir, name, 'metrics.jsonl'), 0).map((s) => [s.step, s.loss]));
    const [a, b] = [steps('staged-whole'), steps('staged-resumed')];
    assert.equal(a.size, 4);
    assert.deepEqual([...b], [...a], 'the steps before the checkpoint and after the resume are the uninterrupted run\'s');
  });

  it('a text file is tokenized by the GGUF file\'s own tokenizer unless --tokenizer says otherwise', async () => {
    const r = await runCli(['train', '--init', gguf, '--dataset', 'text', '--data-file', text, '--name', 'text', ...common], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const config = JSON.parse(readFileSync(join(dir, 'text', 'config.json'), 'utf8'));
    assert.equal(config.tokenizer, gguf);
  });

  it('--init an MLX quantized folder (alone and over 2 pipeline stages), and a float folder with --lora-base-dtype nf4, train adapters over 4-bit matrices', async () => {
    const mlx = join(dir, 'mlx4');
    writeMlxFolder(mlx, model, SPEC, { quantization: { group_size: 64, bits: 4 } });
    const runs = await Promise.all([
      runCli(['train', '--init', mlx, '--dataset', 'synthetic_text', '--name', 'mlx', ...common], { timeoutMs: 120_000 }),
      runCli(['train', '--init', folder, '--lora-base-dtype', 'nf4', '--dataset', 'synthetic_text', '--name', 'nf4', ...common], { timeoutMs: 120_000 }),
      runCli(['train', '--init', mlx, '--dataset', 'synthetic_text', '--workers', '2', '--pipeline-stages', '2', '--micro-batches', '2', '--name', 'mlx-staged', ...common], { timeoutMs: 200_000 }),
    ]);
    for (const [r, name] of [[runs[0], 'mlx'], [runs[1], 'nf4'], [runs[2], 'mlx-staged']] as const) {
      assert.equal(r.code, 0, r.stderr);
      const steps = losses(name, 0);
      assert.equal(steps.length, 3, name);
      assert.ok(steps.every((l) => Number.isFinite(l)), `${name}: ${steps}`);
    }
    const [a, b] = [losses('mlx-staged', 0), losses('mlx', 0)];
    a.forEach((l, i) => assert.ok(Math.abs(l! - b[i]!) <= 1e-5 * Math.abs(b[i]!), `step ${i + 1}: ${l} over stages, ${b[i]} in one process`));
  });

  it('refuses by flag what a quantized base cannot do', async () => {
    const base = ['train', '--dataset', 'synthetic_text', '--context', '16', '--max-steps', '1', '--threads', '1', '--experiments-dir', dir];
    const cases: [string[], RegExp][] = [
      [['--init', gguf], /--init\): the model holds 16 quantized weight matrices \(model\.embed_tokens\.weight is q8_0\), which are frozen: train LoRA adapters over them \(--lora-rank r\)/],
      [['--init', gguf, '--lora-rank', '4', '--lora-base-dtype', 'q4_0'], /--lora-base-dtype q4_0\): the --init model is quantized already/],
      [['--init', gguf, '--lora-rank', '4', '--workers', '2', '--zero', '2'], /--init\): a quantized base trains in one process, with data parallelism \(allreduce\) or over pipeline stages/],
      [['--init', gguf, '--lora-rank', '4', '--merge-lora', '--save', join(dir, 'm.safetensors'), '--save-quantize', 'q4_0'], /--save-quantize\): q4_0 is written into a GGUF file only: --save X\.gguf, not .*m\.safetensors/],
      [['--model', 'llama-tiny', '--save', join(dir, 'm.gguf')], /--save\): .*m\.gguf: a GGUF file carries its tokenizer as a tokenizer\.json's vocabulary and merges, and this run's is the named gpt2/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli([...base, ...args], { timeoutMs: 60_000 });
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, message, args.join(' '));
    }
  });
});
