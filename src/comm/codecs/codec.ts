/**
 * A codec turns float32 values into fewer bytes for the wire and back (lossy). Collectives use one
 * through allreduce_compressed.ts; what each one loses is in docs/ALGORITHMS.md. Encoding is
 * deterministic, so every rank decoding the same bytes gets the same floats.
 */
import { bf16 } from './bf16.js';
import { fp16 } from './fp16.js';
import { int8 } from './int8.js';

export interface Codec {
  readonly name: CodecName;
  /** Bytes `encode` writes for `floats` values. */
  encodedBytes(floats: number): number;
  /**
   * `error`, when given and the codec supports it (`encodesError`), receives src − decode(encode(src))
   * in the same pass (error feedback without decoding one's own bytes again).
   */
  encode(src: Float32Array, out: Uint8Array, error?: Float32Array): void;
  /** Whether `encode` fills `error`. */
  readonly encodesError?: boolean;
  /** Writes the decoded values into `out` (length: the number of floats encoded). */
  decode(src: Uint8Array, out: Float32Array): void;
}

export const CODEC_NAMES = ['fp16', 'bf16', 'int8'] as const;
export type CodecName = (typeof CODEC_NAMES)[number];

export function codecByName(name: CodecName): Codec {
  switch (name) {
    case 'fp16': return fp16;
    case 'bf16': return bf16;
    case 'int8': return int8;
  }
}
