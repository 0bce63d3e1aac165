/**
 * GPT-2 split T ways (Megatron-LM): in each block the attention's c_attn is column-parallel (each
 * rank computes H/T heads of q, k and v), its c_proj row-parallel; the MLP's c_fc column-parallel
 * (4C/T of the hidden units), its c_proj row-parallel. Per block: two sums forward (g after each
 * c_proj) and two backward (f before each column-parallel layer). Embeddings, layer norms, the
 * c_proj biases and the tied head are replicated. Parameter names are nn/models/gpt2.ts's.
 */
import type { Gpt2Spec } from '../../nn/models/index.js';
import { mergeHeads, scaledDotProductAttention, splitQkv } from '../../nn/layers/attention.js';
import { LayerNorm } from '../../nn/layers/norm.js';
import { Module } from '../../nn/module.js';
import { add, gelu } from '../../tensor/ops/elementwise.js';
import { linear } from '../../tensor/ops/matmul.js';
import type { Tensor } from '../../tensor/tensor.js';
import { ColumnParallelLinear, RowParallelLinear } from './layers.js';
import { ReplicatedEmbedding, TensorParallelModule } from './model.js';
import type { TensorParallelTape } from './tape.js';
import type { StageLayer } from '../pipeline/stage_model.js';

class Attention extends Module {
  readonly c_attn: ColumnParallelLinear;
  readonly c_proj: RowParallelLinear;

  constructor(private readonly spec: Gpt2Spec, private readonly size: number) {
    super();
    this.c_attn = this.registerModule('c_attn', new ColumnParallelLinear(spec.width, 3 * spec.width, size, 3));
    this.c_proj = this.registerModule('c_proj', new RowParallelLinear(spec.width, spec.width, size));
  }

  forward(x: Tensor): Tensor {
    const [q, k, v] = splitQkv(this.c_attn.forward(x), this.spec.heads / this.size);
    return this.c_proj.partial(mergeHeads(scaledDotProductAttention(q, k, v, true)));
  }
}

class Mlp extends Module {
  readonly c_fc: ColumnParallelLinear;
  readonly c_proj: RowParallelLinear;

  constructor(width: number, size: number) {
    super();
    this.c_fc = this.registerModule('c_fc', new ColumnParallelLinear(width, 4 * width, size));
    this.c_proj = this.registerModule('c_proj', new RowParallelLinear(4 * width, width, size));
  }

  forward(x: Tensor): Tensor {
    return this.c_proj.partial(gelu(this.c_fc.forward(x)));
  }
}

/** x + g(branch(f(ln(x)))) + bias: one pre-LayerNorm half of a block. */
async function residualHalf(x: Tensor, ln: LayerNorm, branch: Module & { c_proj: RowParallelLinear }, tape: TensorParallelTape): Promise<Tensor> {
  const summed = await tape.g(branch.forward(tape.f(ln.forward(x))));
  // The output is read by the next half's layer norm and its residual: cut, so each graph is walked once.
  return tape.cut(add(x, add(summed, branch.c_proj.bias)));
}

class Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: Attention;
  readonly ln_2: LayerNorm;
  readonly mlp: Mlp;

  constructor(spec: Gpt2Spec, size: number) {
    super();
    this.ln_1 = this.registerModule('ln_1', new LayerNorm(spec.width));
    this.attn = this.registerModule('attn', new Attention(spec, size));
    this.ln_2 = this.registerModule('ln_2', new LayerNorm(spec.width));
    this.mlp = this.registerModule('mlp', new Mlp(spec.width, size));
  }

  forward(x: Tensor): Tensor {
    throw new Error(`a tensor-parallel GPT-2 block sums over its group: call forwardParallel (input ${x.toString()})`);
  }

  async forwardParallel(x: Tensor, tape: TensorParallelTape): Promise<Tensor> {
    const h = await residualHalf(x, this.ln_1, this.attn, tape);
    return residualHalf(h, this.ln_2, this.mlp, tape);
  }
}

class Blocks extends Module {
  readonly blocks: Block[];

  constructor(spec: Gpt2Spec, size: number) {
    super();
    this.blocks = Array.from({ length: spec.layers }, (_, i) => this.registerModule(String(i), new Block(spec, size)));
  }

  forward(x: Tensor): Tensor {
    throw new Error(`tensor-parallel blocks sum over their group: call forwardParallel (input ${x.toString()})`);
  }
}

class Body extends Module {
  readonly wte: ReplicatedEmbedding;
  readonly wpe: ReplicatedEmbedding;
  readonly h: Blocks;
  readonly ln_f: LayerNorm;

  constructor(readonly spec: Gpt2Spec, size: number) {
    super();
    this.wte = this.registerModule('wte', new ReplicatedEmbedding(spec.vocabSize, spec.width));
    this.wpe = this.registerModule('wpe', new ReplicatedEmbedding(spec.context, spec.width));
    this.h = this.registerModule('h', new Blocks(spec, size));
    this.ln_f = this.registerModule('ln_f', new LayerNorm(spec.width));
  }

  forward(x: Tensor): Tensor {
    throw new Error(`a tensor-parallel GPT-2 sums over its group: call forwardParallel (input ${x.toString()})`);
  }
}

/** GPT2LMHeadModel, rank `rank`'s shard of T: logits [N, T, vocab] (replicated on every rank). */
export class TensorParallelGpt2 extends TensorParallelModule {
  readonly transformer: Body;

  constructor(readonly spec: Gpt2Spec, rank: number, size: number) {
    super(rank, size);
    this.transformer = this.registerModule('transformer', new Body(spec, size));
  }

  async forwardParallel(ids: Tensor, tape: TensorParallelTape): Promise<Tensor> {
    const { spec, transformer: t } = this;
    if (ids.ndim !== 2) throw new Error(`gpt2: expected token ids [N, T], got [${ids.shape.join(', ')}]`);
    const [N, T] = ids.shape;
    if (T > spec.context) throw new Error(`gpt2: sequence length ${T} exceeds the model's context ${spec.context} (--context)`);
    const positions = t.wpe.lookup(Int32Array.from({ length: T }, (_, i) => i), [T]);
    let x = tape.cut(add(t.wte.lookup(Int32Array.from(ids.values()), [N, T]), positions));
    for (const block of t.h.blocks) x = await block.forwardParallel(x, tape);
    return linear(t.ln_f.forward(x), t.wte.weight, null);
  }

  /**
   * The layer list a pipeline cuts (nn/models/gpt2.ts's, with tensor-parallel blocks): the
   * embeddings (their output cut, since the first block reads it twice), each block, the final norm
   * with the head tied to wte.
   */
  layerList(): StageLayer[] {
    const t = this.transformer;
    const blocks = t.h.blocks.map((block, i): StageLayer => ({
      name: `transformer.h.${i}`, modules: [[`transformer.h.${i}`, block]],
      forward: (x, _tied, tape) => block.forwardParallel(x, needTape(tape)),
    }));
    return [
      {
        name: 'transformer.wte+wpe', modules: [['transformer.wte', t.wte], ['transformer.wpe', t.wpe]],
        forward: (ids, _tied, tape) => {
          const [N, T] = ids.shape;
          const positions = t.wpe.lookup(Int32Array.from({ length: T }, (_, i) => i), [T]);
          return needTape(tape).cut(add(t.wte.lookup(Int32Array.from(ids.values()), [N, T]), positions));
        },
      },
      ...blocks,
      {
        name: 'transformer.ln_f+lm_head', modules: [['transformer.ln_f', t.ln_f]], tied: { name: 'transformer.wte.weight', tensor: t.wte.weight },
        forward: (x, tied) => linear(t.ln_f.forward(x), tied!, null),
      },
    ];
  }
}

function needTape(tape: TensorParallelTape | undefined): TensorParallelTape {
  if (!tape) throw new Error('a tensor-parallel GPT-2 layer sums over its group: run it with a tape (forwardParallel)');
  return tape;
}
