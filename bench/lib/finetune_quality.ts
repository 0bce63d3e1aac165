/**
 * bench:finetune's quality part (issue 46 §4): bf16 LoRA and QLoRA trained from the same start on
 * the same chat data, each through `smolcluster train` in a child of its own, and their losses
 * compared. The start is the shape's random weights from one seed (no checkpoint installs here);
 * QLoRA quantizes that same base at load (`--lora-base-dtype`), the bf16 run holds it in bf16.
 * The data: prompt/completion pairs (TRL's plain form, the completion learned) of three kinds of
 * question with checkable answers, generated from a seed, GPT-2's tokenizer (the package's).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readMetrics } from '../../src/metrics/reader.js';
import { Rng } from '../../src/util/rng.js';
import { packageRoot } from './child.js';
import { mean } from './stats.js';

/** The run: 200 optimizer steps of 4 windows of 128 tokens, AdamW at the LoRA rate PEFT's examples use. */
export const QUALITY = { steps: 200, context: 128, batch: 4, lr: 2e-4, examples: 1000, lastSteps: 10, targetPercent: 2 } as const;

export interface QualityRun {
  shape: string; base: string;
  /** The training loss of every step, in order. */
  losses: number[];
  /** The mean training loss of the last QUALITY.lastSteps steps (one batch's loss is noisy). */
  lastLoss: number;
  /** The loss on the data's held-out split at the end. */
  testLoss: number | null;
  wallSeconds: number;
}

const COUNTRIES = [['France', 'Paris'], ['Spain', 'Madrid'], ['Italy', 'Rome'], ['Germany', 'Berlin'], ['Japan', 'Tokyo'],
  ['Egypt', 'Cairo'], ['Peru', 'Lima'], ['Kenya', 'Nairobi'], ['Canada', 'Ottawa'], ['Norway', 'Oslo']] as const;
const WORDS = ['apple', 'river', 'stone', 'cloud', 'garden', 'window', 'silver', 'planet'] as const;

/** One question and its answer: a sum, a capital or a word spelt backwards. */
function example(rng: Rng): { prompt: string; completion: string } {
  const ask = (q: string, a: string) => ({ prompt: `User: ${q}\nAssistant:`, completion: ` ${a}` });
  switch (rng.int(3)) {
    case 0: {
      const [a, b] = [rng.int(100), rng.int(100)];
      return ask(`What is ${a} plus ${b}?`, `${a} plus ${b} is ${a + b}.`);
    }
    case 1: {
      const [country, capital] = COUNTRIES[rng.int(COUNTRIES.length)];
      return ask(`What is the capital of ${country}?`, `The capital of ${country} is ${capital}.`);
    }
    default: {
      const w = WORDS[rng.int(WORDS.length)];
      return ask(`Spell the word ${w} backwards.`, `${w} backwards is ${[...w].reverse().join('')}.`);
    }
  }
}

/** The data set as JSONL in dir: QUALITY.examples lines from `seed`. */
export function writeChatSet(dir: string, seed: number): string {
  const rng = new Rng(seed);
  const file = join(dir, 'chat.jsonl');
  writeFileSync(file, Array.from({ length: QUALITY.examples }, () => JSON.stringify(example(rng))).join('\n') + '\n');
  return file;
}

/** One `train` run of `shape` with LoRA over a base held as `base` (bf16, or a QLoRA scheme); a string says why it failed. */
export async function qualityRun(shape: string, base: string, data: string, dir: string, seed: number, threads: number): Promise<QualityRun | string> {
  const name = `${shape}-${base}`;
  const args = [
    join(packageRoot(import.meta.url), 'dist', 'src', 'cli', 'main.js'), 'train', '--model', shape, '--dataset', 'text', '--data-file', data,
    '--lora-rank', '16', '--lora-alpha', '32', '--lora-targets', 'q_proj,k_proj,v_proj,o_proj', '--lora-base-dtype', base, '--precision', 'bf16',
    '--context', String(QUALITY.context), '--batch-size', String(QUALITY.batch), '--max-steps', String(QUALITY.steps),
    '--optimizer', 'adamw', '--lr', String(QUALITY.lr), '--seed', String(seed), '--threads', String(threads),
    '--eval-every', '0', '--checkpoint-every', '0', '--experiments-dir', dir, '--name', name,
  ];
  const started = Date.now();
  let stderr = '';
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const wallSeconds = (Date.now() - started) / 1000;
  const metrics = join(dir, name, 'metrics.jsonl');
  if (code !== 0 || !existsSync(metrics)) return `exit ${code}: ${stderr.trim().split('\n').slice(-2).join(' | ')}`;
  const losses = readMetrics(metrics).steps.map((s) => s.loss).filter((l): l is number => l !== null);
  const result = JSON.parse(readFileSync(join(dir, name, 'result.json'), 'utf8')) as { test_loss?: number };
  return { shape, base, losses, lastLoss: mean(losses.slice(-QUALITY.lastSteps)), testLoss: result.test_loss ?? null, wallSeconds };
}
