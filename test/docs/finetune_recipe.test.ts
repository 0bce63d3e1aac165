/**
 * docs/FINETUNE.md's complete recipe, run exactly as written (the block its doc-test marker names
 * this file in): a tiny SmolLM2-shaped base folder with Qwen3's tokenizer, LoRA on 2 workers over
 * chat JSONL, the adapters merged into a Hugging Face folder, then `generate`. Checks what each
 * command writes: the base folder carries the tokenizer and its chat template, the adapter folder is
 * PEFT's (its config and only lora_A / lora_B tensors), the merged folder has the adapted
 * projections changed and every other weight the base's, and generate prints its token count.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MARKER = 'test/docs/finetune_recipe.test.ts';

/** The commands of the shell block after the marker naming this file: continuations joined, comments dropped. */
function recipeCommands(doc: string): string[][] {
  const lines = readFileSync(join(ROOT, doc), 'utf8').split('\n');
  const at = lines.findIndex((l) => l.startsWith('<!-- doc-test:') && l.includes(MARKER));
  assert.ok(at >= 0 && lines[at + 1] === '```sh', `${doc}: no \`\`\`sh block after a doc-test marker naming ${MARKER}`);
  const end = lines.findIndex((l, i) => i > at + 1 && l.startsWith('```'));
  const joined = lines.slice(at + 2, end).join('\n').replace(/\\\n\s*/g, ' ').split('\n');
  return joined.filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))
    .map((l) => [...l.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]));
}

/** A safetensors file's tensors: name → raw bytes. */
function tensors(file: string): Map<string, Buffer> {
  const buf = readFileSync(file);
  const headerLength = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
  const data = 8 + headerLength;
  return new Map(Object.entries(header).filter(([n]) => n !== '__metadata__').map(([n, t]) => [n, buf.subarray(data + t.data_offsets[0], data + t.data_offsets[1])]));
}

const dir = mkdtempSync(join(tmpdir(), 'smol-finetune-recipe-'));
symlinkSync(join(ROOT, 'examples'), join(dir, 'examples'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('docs/FINETUNE.md: the complete recipe, as written', { timeout: 240_000 }, () => {
  it('base folder → LoRA on 2 workers → merged folder → generate; each writes what the doc says', async () => {
    const commands = recipeCommands('docs/FINETUNE.md');
    assert.deepEqual(commands.map((c) => `${c[0]} ${c[1]}`), ['smolcluster train', 'smolcluster train', 'smolcluster train', 'smolcluster generate', 'smolcluster eval']);
    const outputs: string[] = [];
    const printed: string[] = [];
    for (const c of commands) {
      const r = await runCli(c.slice(1), { cwd: dir, timeoutMs: 120_000 });
      assert.equal(r.code, 0, `${c.join(' ')}: exit ${r.code}\n${r.stderr.slice(-1500)}`);
      outputs.push(r.stderr);
      printed.push(r.stdout);
    }
    const base = join(dir, 'base');
    assert.deepEqual(readdirSync(base).sort(), ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    assert.match(readFileSync(join(base, 'tokenizer_config.json'), 'utf8'), /"chat_template"/, 'the chat template came with the tokenizer');
    const config = JSON.parse(readFileSync(join(base, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([config.num_attention_heads, config.num_key_value_heads, config.tie_word_embeddings, config.num_hidden_layers], [9, 3, true, 2]);

    const adapter = JSON.parse(readFileSync(join(dir, 'adapter', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([adapter.peft_type, adapter.r, adapter.lora_alpha, [...(adapter.target_modules as string[])].sort()], ['LORA', 8, 16, ['k_proj', 'o_proj', 'q_proj', 'v_proj']]);
    const adapterNames = [...tensors(join(dir, 'adapter', 'adapter_model.safetensors')).keys()];
    assert.equal(adapterNames.length, 2 * 4 * 2, 'A and B of 4 projections in 2 layers');
    assert.ok(adapterNames.every((n) => /^base_model\.model\.model\.layers\.\d\.self_attn\.[qkvo]_proj\.lora_[AB]\.weight$/.test(n)), adapterNames.join(', '));

    const merged = join(dir, 'merged');
    assert.ok(existsSync(join(merged, 'tokenizer.json')) && !existsSync(join(merged, 'adapter_config.json')), readdirSync(merged).join(', '));
    const [before, after] = [tensors(join(base, 'model.safetensors')), tensors(join(merged, 'model.safetensors'))];
    assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), 'the merged folder has the base\'s tensors, no adapters');
    for (const [name, bytes] of before) {
      const adapted = /self_attn\.[qkvo]_proj\.weight$/.test(name);
      assert.equal(bytes.equals(after.get(name)!), !adapted, `${name}: ${adapted ? 'the trained adapter is merged in' : 'frozen, as the base'}`);
    }
    assert.match(outputs[3], /8 tokens in/, 'generate reports the tokens it made');
    // eval sets the fine-tune's figures on the assistant's tokens beside the base's, with the change.
    assert.match(printed[4], /^examples\/chat\.jsonl \(chat\)$/m, printed[4]);
    for (const figure of ['loss', 'perplexity', 'token accuracy']) assert.match(printed[4], new RegExp(`^  ${figure} .+ [+-]\\d`, 'm'), printed[4]);
  });
});
