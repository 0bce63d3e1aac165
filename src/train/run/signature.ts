import { createHash } from 'node:crypto';
import type { TrainConfig } from './config.js';

/**
 * What every process of a run must agree on, as one string for the handshake: the model and every
 * setting that shapes the steps. Per-host settings (threads, data directory and files, the device: one
 * worker may train on a GPU beside another on the cpu) are left out. Peers
 * with different signatures are refused at connect, naming the mismatch.
 *
 * The compute precision is left out too: master weights are fp32 whatever it is, so a checkpoint
 * resumes under another precision. Peers agree on it through the cluster's signature instead
 * (launch/worker_flags.ts), and on auto's choice through the store (train/engine/precision_agreement.ts).
 */
export function runSignature(config: TrainConfig): string {
  // Samples during training (--sample-*) only watch the run: a checkpoint resumes with other ones.
  const {
    threads: _threads, dataDir: _dataDir, dataFile: _dataFile, valFile: _valFile, precision: _precision, precisionAuto: _auto, device: _device,
    sampleEvery: _se, samplePrompt: _sp, sampleTemperature: _st, sampleTokens: _sn, ...shared
  } = config;
  return signatureOf(config, shared);
}

/**
 * What a checkpoint must share with the run resuming from it: the model, the data and the
 * optimizer. How long the run goes on (epochs, --max-steps, early stopping) and what it records
 * (evaluation, the best model, gradient tracking, samples) may change between attempts, and so may the number of workers (not
 * part of the config): a resumed run may ask for more steps, or run on another number of workers.
 */
export function resumeSignature(config: TrainConfig): string {
  const {
    threads: _threads, dataDir: _dataDir, dataFile: _dataFile, valFile: _valFile, precision: _precision, precisionAuto: _auto, device: _device,
    epochs: _epochs, maxSteps: _maxSteps, evalEvery: _evalEvery, evalBatchSize: _evalBatchSize, trackGradients: _track,
    earlyStoppingPatience: _patience, earlyStoppingThreshold: _threshold, saveBest: _saveBest,
    sampleEvery: _se, samplePrompt: _sp, sampleTemperature: _st, sampleTokens: _sn, ...shared
  } = config;
  return signatureOf(config, shared);
}

function signatureOf(config: TrainConfig, shared: object): string {
  const digest = createHash('sha256').update(JSON.stringify(shared)).digest('hex').slice(0, 16);
  return `${config.model}[${config.model === 'mlp' ? config.hidden.join('-') : 'default'}] config ${digest}`;
}
