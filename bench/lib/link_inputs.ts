/**
 * Training inputs for bench:links' larger models, written once per run into a temporary folder.
 *
 * A throughput bench needs the real input pipeline and shapes, not meaningful data: a step's cost does
 * not depend on the values. Whatever a worker trains on must also be evaluated at the end of its run,
 * and ResNet-18 on synthetic_image's 768 test images took ≈ 50 s and 8.5 GB there (one batch of 768), so:
 *  - resnet18: a CIFAR-10-format folder (`--dataset cifar10 --data-dir`) of seeded random records,
 *    5 × 64 training and 16 test images of 3 × 32 × 32 — read by the real CIFAR-10 loader;
 *  - gpt2-tiny: a text file (`--dataset text --tokenizer gpt2`) of the repository's own README and docs
 *    (≈ 260 KB, ≈ 65 k GPT-2 tokens, 10 % of them the test split), tokenised by the real tokenizer.
 * The PyTorch reference (bench/reference/ddp_torch.py) draws random inputs of the same shapes.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES } from '../../src/data/cifar10.js';
import { Rng } from '../../src/util/rng.js';

const RECORD = 3073;

function cifarBatch(rng: Rng, records: number): Buffer {
  const b = Buffer.alloc(records * RECORD);
  for (let r = 0; r < records; r++) {
    b[r * RECORD] = rng.int(10);
    for (let i = 1; i < RECORD; i++) b[r * RECORD + i] = rng.int(256);
  }
  return b;
}

/** Writes the CIFAR-10-format folder under `dir` and returns its path. */
export function writeCifarLike(dir: string, perFile = 64, test = 16, seed = 1234): string {
  const out = join(dir, 'cifar-like');
  mkdirSync(out, { recursive: true });
  const rng = new Rng(seed);
  for (const f of CIFAR10_TRAIN_FILES) writeFileSync(join(out, f), cifarBatch(rng, perFile));
  writeFileSync(join(out, CIFAR10_TEST_FILE), cifarBatch(rng, test));
  return out;
}

/** Writes README.md and docs/*.md of `root`, in name order, as one text file under `dir`; returns its path. */
export function writeDocsText(dir: string, root: string): string {
  const docs = readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => join(root, 'docs', f));
  const file = join(dir, 'docs.txt');
  writeFileSync(file, [join(root, 'README.md'), ...docs].map((f) => readFileSync(f, 'utf8')).join('\n'));
  return file;
}
