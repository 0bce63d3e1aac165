/**
 * The run's compute precision (docs/PRECISION.md): `--precision auto` resolved to fp32 or bf16 in
 * the config (with why), and the precision set on the engine once per run, on every process.
 */
import { type Precision, setComputePrecision } from '../tensor/precision.js';
import { type AutoPrecision, describeAutoPrecision, resolveAutoPrecision } from '../tensor/precision_auto.js';
import type { TrainConfig } from './config.js';

/**
 * Resolves `auto` in `config` with `choice` (default: this process's own detection and measurement)
 * and says the choice once on stderr; fp32 and bf16 stay as they are. Returns the precision.
 */
export function settlePrecision(config: TrainConfig, choice?: AutoPrecision, say: (line: string) => void = (l) => process.stderr.write(`smolcluster: ${l}\n`)): Precision {
  if (config.precision !== 'auto') return config.precision;
  const auto = choice ?? resolveAutoPrecision();
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
