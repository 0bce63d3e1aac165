/**
 * rmsNorm, rotary and siluMul against Hugging Face transformers' own code on the same float32
 * inputs: LlamaRMSNorm, apply_rotary_pos_emb (rotate_half, cos/sin repeated over both halves, as
 * LlamaRotaryEmbedding makes them) and ACT2FN['silu'](gate) · up; outputs and the gradients of
 * sum(out · R). Runs on the cpu backends where a Python with torch and transformers is found
 * ($SMOLCLUSTER_PYTHON, the project's venv /opt/torchvenv); skipped elsewhere.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/per_backend.js';
import { Tensor, backward, rmsNorm, rotary, siluMul } from '../../../src/tensor/index.js';
import { findPython } from '../../helpers/python.js';
import { runReference } from '../../helpers/python_reference.js';
import { Rng, assertClose, randn, uniform } from '../../helpers/tensors.js';

const PYTHON = findPython([process.env.SMOLCLUSTER_PYTHON, '/opt/torchvenv/bin/python'], ['torch', 'transformers']);

const SCRIPT = `
import json, sys, torch
from transformers.activations import ACT2FN
from transformers.models.llama.modeling_llama import LlamaRMSNorm, apply_rotary_pos_emb
a = json.load(sys.stdin)
t = lambda k: torch.tensor(a[k], dtype=torch.float32).reshape(a[k + '_shape'])
def grads(out, R, *xs):
    (out * R).sum().backward()
    return [x.grad.flatten().tolist() for x in xs]
res = {}
x = t('x').requires_grad_()
norm = LlamaRMSNorm(a['x_shape'][-1], eps=a['eps'])
with torch.no_grad(): norm.weight.copy_(t('w'))
y = norm(x)
res['rms'] = [y.flatten().tolist()] + grads(y, t('rms_R'), x, norm.weight)
q = t('q').requires_grad_()
half = lambda k: torch.cat([t(k), t(k)], -1).unsqueeze(0)  # [1, T, D]: the model's cos/sin for one batch
yq, _ = apply_rotary_pos_emb(q, q.detach(), half('cos'), half('sin'))
res['rot'] = [yq.flatten().tolist()] + grads(yq, t('rot_R'), q)
g = t('gate').requires_grad_(); u = t('up').requires_grad_()
ys = ACT2FN['silu'](g) * u
res['silu'] = [ys.flatten().tolist()] + grads(ys, t('silu_R'), g, u)
print(json.dumps(res))
`;

type Case = Record<string, number[] | number>;

/** The inputs as JSON the script reads: each tensor's values and its shape. */
function asJson(tensors: Record<string, Tensor>, extra: Record<string, number>): string {
  const out: Case = { ...extra };
  for (const [k, v] of Object.entries(tensors)) {
    out[k] = [...v.values()];
    out[`${k}_shape`] = [...v.shape];
  }
  return JSON.stringify(out);
}

/** Our output and input gradients of sum(out · R), in float32 on the backend under test. */
function ours(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], R: Tensor, wrt: number[]): number[][] {
  const xs = inputs.map((t, i) => {
    const c = Tensor.from(t.values(), t.shape, 'float32');
    c.requiresGrad = wrt.includes(i);
    return c;
  });
  const y = fn(...xs);
  backward(y, Float32Array.from(R.values()));
  return [[...y.values()], ...wrt.map((i) => [...xs[i].gradValues()!])];
}

describe('rmsNorm, rotary and siluMul against transformers', { skip: PYTHON ? false : 'no Python with torch and transformers (set SMOLCLUSTER_PYTHON)' }, () => {
  it('LlamaRMSNorm, apply_rotary_pos_emb and silu(gate) · up: outputs and gradients', () => {
    const r = new Rng(30);
    const f32 = 'float32' as const;
    const [T, D] = [6, 16];
    const angles = Array.from({ length: T * (D / 2) }, (_, k) => Math.floor(k / (D / 2)) * 1e4 ** (-(2 * (k % (D / 2))) / D));
    const inputs = {
      x: randn([2, 5, 24], r, f32, 2), w: uniform([24], r, 0.5, 1.5, f32), rms_R: randn([2, 5, 24], r, f32),
      q: randn([2, 3, T, D], r, f32), cos: Tensor.from(angles.map(Math.cos), [T, D / 2], f32),
      sin: Tensor.from(angles.map(Math.sin), [T, D / 2], f32), rot_R: randn([2, 3, T, D], r, f32),
      gate: randn([3, 40], r, f32, 4), up: randn([3, 40], r, f32), silu_R: randn([3, 40], r, f32),
    };
    // Once per process: the spec runs on every backend with the same inputs.
    const run = runReference({ python: PYTHON!, args: ['-c', SCRIPT], input: asJson(inputs, { eps: 1e-6 }), timeout: 120_000 });
    assert.equal(run.status, 0, `transformers failed: ${run.stderr}`);
    const theirs = JSON.parse(run.stdout) as Record<'rms' | 'rot' | 'silu', number[][]>;
    const mine = {
      rms: ours((x, w) => rmsNorm(x, w, 1e-6), [inputs.x, inputs.w], inputs.rms_R, [0, 1]),
      rot: ours((q, c, s) => rotary(q, c, s), [inputs.q, inputs.cos, inputs.sin], inputs.rot_R, [0]),
      silu: ours((g, u) => siluMul(g, u), [inputs.gate, inputs.up], inputs.silu_R, [0, 1]),
    };
    for (const op of ['rms', 'rot', 'silu'] as const) {
      assert.equal(mine[op].length, theirs[op].length, `${op}: as many results`);
      mine[op].forEach((v, i) => {
        const scale = Math.max(...theirs[op][i].map(Math.abs));
        assertClose(v, theirs[op][i], { rtol: 1e-5, atol: 1e-6 * scale, msg: `${op} ${i === 0 ? 'output' : `gradient ${i - 1}`}` });
      });
    }
  });
});
