/**
 * Mixtral (the Llama family with a sparse mixture of experts, nn/layers/sparse_moe.ts) against
 * transformers' MixtralForCausalLM: our model saved as a Hugging Face folder (config.json with the
 * experts, Mixtral's checkpoint names block_sparse_moe.gate / experts.{i}.w1/w2/w3) and loaded by
 * from_pretrained gives, on the same tokens, the same logits, load-balancing aux_loss, training
 * loss (cross-entropy + router_aux_loss_coef × aux_loss) and gradients of every parameter within
 * 1e-4 relative. Top-1 and top-2 routing; one Python process for both. Skipped without a Python
 * with torch and transformers ($SMOLCLUSTER_PYTHON, /opt/torchvenv).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { saveFolder } from '../../../src/nn/interchange/hf_folder.js';
import { type LlamaSpec, createModel, llamaSpec } from '../../../src/nn/index.js';
import type { LlamaForCausalLM } from '../../../src/nn/models/llama.js';
import { auxLossOf } from '../../../src/nn/layers/router_loss.js';
import { backward } from '../../../src/tensor/autograd.js';
import { add } from '../../../src/tensor/ops/elementwise.js';
import { crossEntropy } from '../../../src/tensor/ops/loss.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';
import { findPython } from '../../helpers/python.js';
import { relError } from '../../helpers/tensors.js';
import { runReference } from '../../helpers/python_reference.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/nn/models/mixtral_reference.py');
const PYTHON = findPython([process.env.SMOLCLUSTER_PYTHON, '/opt/torchvenv/bin/python'], ['torch', 'transformers']);
const dir = mkdtempSync(join(tmpdir(), 'smol-mixtral-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const VOCAB = 48;
const [N, T] = [2, 12];

const CASES: [string, LlamaSpec][] = [
  ['mixtral-tiny: 8 experts, top 2', llamaSpec('mixtral-tiny', VOCAB, T)],
  ['4 experts, top 1, tied head', { ...llamaSpec('mixtral-tiny', VOCAB, T), tieEmbeddings: true, moe: { experts: 4, topK: 1, auxLossCoef: 0.1 } }],
];

interface Ours { model: LlamaForCausalLM; logits: Float32Array; aux: number; loss: number; input: object }
interface Reference { logits: number[]; aux: number; loss: number; grads: Record<string, number[]> }

function ours(spec: LlamaSpec, i: number): Ours {
  const model = createModel(spec, 11 + i) as LlamaForCausalLM;
  model.train();
  const folder = join(dir, `case${i}`);
  saveFolder(folder, model, spec);
  const rng = new Rng(5 + i);
  const ids = Array.from({ length: N * T }, () => rng.int(VOCAB));
  const labels = Array.from({ length: N * T }, () => rng.int(VOCAB));
  const logits = model.forward(Tensor.from(ids, [N, T]));
  const aux = auxLossOf(logits);
  assert.ok(aux, 'a training forward attaches the weighted load-balancing loss');
  const loss = add(crossEntropy(logits, Int32Array.from(labels)), aux);
  const unweighted = model.routerAuxLoss()!.item();
  backward(loss);
  return { model, logits: Float32Array.from(logits.values()), aux: unweighted, loss: loss.item(), input: { dir: folder, ids, shape: [N, T], labels } };
}

describe('mixtral against transformers (logits, aux loss, loss, gradients)', { skip: PYTHON ? false : 'no Python with torch and transformers (set SMOLCLUSTER_PYTHON)' }, () => {
  let runs: Ours[] = [];
  let refs: Reference[] = [];
  before(() => {
    runs = CASES.map(([, spec], i) => ours(spec, i));
    const [input, output] = [join(dir, 'in.json'), join(dir, 'out.json')];
    writeFileSync(input, JSON.stringify(runs.map((r) => r.input)));
    const run = runReference({ python: PYTHON!, args: [SCRIPT, input, output], outputs: [output], root: dir });
    assert.equal(run.status, 0, run.stderr);
    refs = JSON.parse(readFileSync(output, 'utf8')) as Reference[];
  });

  CASES.forEach(([name], i) => {
    it(name, () => {
      const [run, ref] = [runs[i], refs[i]];
      assert.ok(relError(run.logits, ref.logits) < 1e-4, `logits differ by ${relError(run.logits, ref.logits).toExponential(2)}`);
      assert.ok(Math.abs(run.aux - ref.aux) < 1e-4 * ref.aux, `aux loss ${run.aux} vs ${ref.aux}`);
      assert.ok(Math.abs(run.loss - ref.loss) < 1e-4 * ref.loss, `loss ${run.loss} vs ${ref.loss}`);
      assert.deepEqual(Object.keys(ref.grads).sort(), run.model.namedParameters().map(([n]) => n).sort());
      for (const [param, p] of run.model.namedParameters()) {
        // An expert no token was routed to has no gradient here, zeros in transformers' fused tensor.
        const err = relError(p.gradValues() ?? new Float32Array(p.size), ref.grads[param]);
        assert.ok(err < 1e-4, `${param}: gradient differs by ${err.toExponential(2)} relative`);
      }
    });
  });
});
