/**
 * Reading a Hugging Face config.json: typed fields, each problem naming the file and the key, and
 * the shape of a family's reader and writer (hf_config.ts dispatches on model_type).
 */
import type { ModelSpec } from '../models/index.js';
import { ConfigError } from '../../util/errors.js';

/** A parsed config.json (any JSON object). */
export type HfConfig = Record<string, unknown>;

/** Reads typed fields of one config.json, each problem naming the file and the key. */
export class ConfigReader {
  constructor(readonly json: HfConfig, readonly file: string) {}

  error(key: string, message: string): ConfigError {
    return new ConfigError(this.file, key, message);
  }

  has(key: string): boolean {
    return this.json[key] !== undefined && this.json[key] !== null;
  }

  /** A positive integer (a size). */
  size(key: string, fallback?: number): number {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw this.error(key, `must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  }

  /** A finite number. */
  number(key: string, fallback?: number): number {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.error(key, `must be a number, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'boolean') throw this.error(key, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  /** The key, when present, must hold one of `allowed` (what our model computes). */
  oneOf(key: string, allowed: readonly unknown[], why: string): void {
    if (!this.has(key)) return;
    if (!allowed.includes(this.json[key])) throw this.error(key, `${JSON.stringify(this.json[key])} is not supported: ${why}`);
  }
}

/** A family we build: how to tell its config.json, read it into a spec, and write one back. */
export interface HfFamily {
  modelTypes: readonly string[];
  architectures: readonly string[];
  toSpec(config: ConfigReader): ModelSpec;
  toConfig(spec: ModelSpec): HfConfig;
}

