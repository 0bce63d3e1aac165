/**
 * The model of the lowest evaluation loss (--save-best; on with --early-stopping-patience), as the
 * Hugging Face Trainer keeps it with load_best_model_at_end and metric_for_best_model=eval_loss.
 * The leader writes it to `best/` beside the checkpoints whenever an evaluation beats the best so
 * far: `best/model.smol` (a smolcluster model file, fp32) and `best/best.json` (its step and loss),
 * each atomically. A fresh run starts with no best; a resumed one keeps the folder (the checkpoint
 * it resumes carries the watch's best loss, loop/early_stopping.ts). At the end `--save` writes the
 * best model instead of the last one.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, saveModel } from '../../nn/checkpoint.js';
import type { ModelSpec } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { writeFileAtomic } from '../../util/atomic_file.js';
import { ensureWritableFolder } from '../../util/writable.js';
import { modelOnHost } from '../boundary/model_on_host.js';
import type { BestKeeper } from '../loop/loop.js';

export const BEST_FOLDER = 'best';

/** What best/best.json says (and result.json's `best`). */
export interface BestRecord {
  step: number;
  loss: number;
  file: string;
}

export class BestModel implements BestKeeper {
  private kept: BestRecord | null = null;

  /**
   * `dir`: the best/ folder. Resuming, an earlier attempt's best stays and is read; otherwise the
   * process that owns the run's folder (`owner`, rank 0) removes it. The leader writes into it.
   */
  constructor(readonly dir: string, resuming: boolean, owner: boolean) {
    if (resuming) this.kept = readBest(dir);
    else if (owner) rmSync(dir, { recursive: true, force: true });
    // At start, not at the first evaluation: an unwritable folder is refused before any training.
    if (owner) ensureWritableFolder(dir, '--checkpoint-dir (its best/ folder)');
  }

  async keep(model: Module, spec: ModelSpec, step: number, loss: number): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const file = join(this.dir, 'model.smol');
    await saveModel(file, await modelOnHost(model, spec), spec, { step, eval_loss: loss });
    this.kept = { step, loss, file };
    writeFileAtomic(join(this.dir, 'best.json'), `${JSON.stringify(this.kept, null, 1)}\n`);
  }

  /** The best kept so far (this attempt's or, resumed, an earlier one's); null before any. */
  get record(): BestRecord | null {
    return this.kept;
  }

  /** Writes the best model's weights into `model` (same architecture), for --save. */
  loadInto(model: Module, spec: ModelSpec): void {
    if (!this.kept) throw new Error(`${this.dir}: no best model kept yet`);
    loadModel(this.kept.file, model, spec);
  }
}

function readBest(dir: string): BestRecord | null {
  const file = join(dir, 'best.json');
  if (!existsSync(file)) return null;
  const r = JSON.parse(readFileSync(file, 'utf8')) as BestRecord;
  if (!Number.isInteger(r?.step) || typeof r.loss !== 'number' || typeof r.file !== 'string' || !existsSync(r.file)) {
    throw new Error(`${file}: not a best model record (step, loss and an existing file)`);
  }
  return r;
}
