/**
 * `serve --lora-modules NAME=DIR`: several adapters over one base, unmerged. /v1/models lists the
 * base and each adapter (its parent the base); a request's model picks the adapter, and concurrent
 * requests for different adapters decode in shared forwards, each reply the one generate() gives
 * alone over that adapter merged into the base. An unknown model is a 404 naming those served.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { loraModules } from '../../src/cli/serve.js';
import type { CausalLm } from '../../src/generate/generate.js';
import { applyLora, mergeAdapterInto, saveAdapter } from '../../src/nn/lora/index.js';
import { loadServedAdapters } from '../../src/nn/lora/served_adapters.js';
import type { LlamaSpec } from '../../src/nn/models/index.js';
import type { Module } from '../../src/nn/module.js';
import type { ServedModel } from '../../src/serve/served_model.js';
import { type ModelServer, startModelServer } from '../../src/serve/server.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { randomModel } from '../generate/families.js';
import { tempDir } from '../helpers/cluster.js';
import { CONTEXT, greedyAlone, letters } from './fixtures.js';

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 128, context: CONTEXT, layers: 2, width: 32, intermediate: 64, heads: 4, kvHeads: 2, headDim: 8,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
};
const dir = tempDir('serve-adapters');
const baseModel = (): CausalLm => randomModel(SPEC, 5);
const servedOf = (model: CausalLm, adapters: string[] = []): ServedModel => ({ id: 'tiny', model, tokenizer: letters, eosIds: [], context: CONTEXT, chatTemplate: null, adapters });

async function writeAdapter(name: string, targets: string[], seed: number): Promise<string> {
  const model = randomModel(SPEC, 5) as unknown as Module;
  applyLora(model, { rank: 4, alpha: 8, dropout: 0, targets, seed });
  const rng = new Rng(seed);
  for (const [n, p] of model.namedTrainable()) if (n.endsWith('lora_B.weight')) p.storage.write(Float32Array.from(p.values() as Float32Array, () => 0.5 * rng.normal()));
  await saveAdapter(join(dir, name), model, SPEC);
  return join(dir, name);
}

let server: ModelServer;
let client: OpenAI;
const merged = new Map<string, ServedModel>();
const batchSizes: number[] = [];

describe('serve: several LoRA adapters over one base', { timeout: 60_000 }, () => {
  before(async () => {
    const adapters = [{ name: 'math', dir: await writeAdapter('math', ['q_proj', 'v_proj', 'down_proj'], 7) }, { name: 'chat', dir: await writeAdapter('chat', ['o_proj', 'up_proj'], 8) }];
    const model = baseModel();
    loadServedAdapters(model as unknown as Module, adapters);
    const forward = model.forward.bind(model);
    model.forward = ((ids: Tensor, cache?: never) => {
      batchSizes.push(ids.shape[0]);
      return forward(ids, cache);
    }) as typeof model.forward;
    merged.set('tiny', servedOf(baseModel()));
    for (const a of adapters) {
      const m = baseModel();
      await mergeAdapterInto(a.dir, m as unknown as Module);
      merged.set(a.name, servedOf(m));
    }
    server = await startModelServer(servedOf(model, adapters.map((a) => a.name)), { port: 0, maxBatch: 6 });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', timeout: 20_000, maxRetries: 0 });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the base and each adapter, whose parent is the base', async () => {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => [m.id, (m as unknown as { parent?: string }).parent ?? null]), [['tiny', null], ['math', 'tiny'], ['chat', 'tiny']]);
    assert.equal((await client.models.retrieve('chat')).id, 'chat');
  });

  it('concurrent requests for the base and both adapters decode together, each reply that of its adapter merged, alone', async () => {
    const asks = [['math', 'abc'], ['tiny', 'abc'], ['chat', 'hello'], ['math', 'klmnop'], ['chat', 'abc'], ['tiny', 'xyz']];
    batchSizes.length = 0;
    const replies = await Promise.all(asks.map(([model, prompt]) => client.completions.create({ model, prompt, max_tokens: 10, temperature: 0 })));
    for (const [i, [model, prompt]] of asks.entries()) {
      assert.equal(replies[i].model, model);
      assert.equal(replies[i].choices[0].text, await greedyAlone(merged.get(model)!, prompt, 10), `${model}: ${prompt}`);
    }
    assert.ok(Math.max(...batchSizes) > 2, `rows of different adapters shared forwards: ${batchSizes.join(' ')}`);
    const differ = new Set(await Promise.all(['tiny', 'math', 'chat'].map((m) => greedyAlone(merged.get(m)!, 'abc', 10))));
    assert.equal(differ.size, 3, 'each adapter changes the reply');
  });

  it('an unknown model is a 404 naming what is served; --lora-modules is NAME=DIR, never the base\'s name', async () => {
    await assert.rejects(client.completions.create({ model: 'poetry', prompt: 'a', max_tokens: 2 }), (e: { status?: number; message: string }) => e.status === 404 && /'poetry' does not exist: this server serves 'tiny', 'math', 'chat'/.test(e.message));
    assert.throws(() => loraModules(['math'], 'tiny'), /--lora-modules.*"math": expected NAME=DIR/);
    assert.throws(() => loraModules(['tiny=/x'], 'tiny'), /tiny is the base model's id/);
    assert.deepEqual(loraModules(['a=/x', ' b = /y'], 'tiny'), [{ name: 'a', dir: '/x' }, { name: 'b', dir: '/y' }]);
  });
});
