/**
 * The run's compute precision (docs/PRECISION.md): `--precision auto` resolved to fp32 or bf16 in
 * the config (with why), and the precision set on the engine once per run, on every process.
 */
import { type Precision, setComputePrecision } from '../../tensor/precision.js';
import { type AutoPrecision, describeAutoPrecision, resolveAutoPrecision } from './precision_auto.js';
import { supportsPrecision } from '../../tensor/precision_support.js';
import { CPU, type Device } from '../../tensor/storage.js';
import { SmolError } from '../../util/errors.js';
import type { TrainConfig } from '../run/config.js';

/**
 * Resolves `auto` in `config` with `choice` (default: this process's own detection and measurement,
 * for the device it trains on)
 * and says the choice once on stderr; fp32 and bf16 stay as they are. Returns the precision.
 */
export function settlePrecision(config: TrainConfig, choice?: AutoPrecision, say: (line: string) => void = (l) => process.stderr.write(`smolcluster: ${l}\n`)): Precision {
  if (config.precision !== 'auto') return config.precision;
  const auto = choice ?? resolveAutoPrecision(config.device ?? CPU);
  config.precision = auto.precision;
  config.precisionAuto = auto;
  say(describeAutoPrecision(auto));
  return auto.precision;
}

/** Sets the precision every op of this run computes in (the loop calls it once, before the first step). */
export function applyPrecision(config: TrainConfig): Precision {
  const p = settlePrecision(config);
  setComputePrecision(p);
  return p;
}

/**
 * Refuses, before the first step, a precision the device this rank trains on cannot compute in
 * (--precision bf16 on a GPU rank, or an elastic run's bf16 handed to a GPU member), naming the rank.
 */
export function checkPrecisionRuns(precision: Precision, device: Device, rank: number): void {
  if (supportsPrecision(device, precision)) return;
  throw new SmolError('BAD_FLAGS', `--precision ${precision}: rank ${rank} trains on ${device}, which cannot compute in ${precision}; use --precision fp32, or auto (it chooses what every rank's device runs): ${device} computes in fp32 only`);
}
