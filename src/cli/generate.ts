import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { GENERATE_OPTIONS, type OptionValues } from '../config/options/index.js';
import { DEFAULT_MAX_NEW_TOKENS, promptIds, replySummary, streamReply } from '../generate/reply.js';
import { pipelinedStream } from '../serve/stages/pipelined_generate.js';
import { ConfigError } from '../util/errors.js';
import { loadFromFlags, loadedLine, samplingFrom } from './generation_flags.js';
import { addOptions } from './option_table.js';
import { startStagesFromFlags } from './stages_driver.js';

type GenerateFlags = OptionValues<typeof GENERATE_OPTIONS>;

/**
 * `smolcluster generate --model SRC --prompt TEXT`: the continuation streamed to stdout as the
 * tokens come, then one summary line on stderr (tokens, speed, why it stopped).
 */
export function generateCommand(): Command {
  const cmd = new Command('generate')
    .description('continue a prompt with a trained model, streaming the text (docs/GENERATE.md)');
  return addOptions(cmd, GENERATE_OPTIONS).action(async (f: GenerateFlags) => {
    if (f.prompt === undefined) throw new ConfigError('command line', '--prompt', 'generate needs --prompt TEXT (or --prompt - to read it from stdin)');
    const text = f.prompt === '-' ? readFileSync(0, 'utf8') : f.prompt;
    // Each stage loads its own layers (nn/layer_list.ts), quantizing them with --quantize.
    if (f.stages > 1) return generateAcrossStages(f, text);
    // Every token is at least one byte of the prompt (byte-level BPE; bytes), plus a few special tokens: the positions' bound.
    const positions = Buffer.byteLength(text) + 16 + (f.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS);
    const { generator, release } = await loadFromFlags('generate', f, positions);
    try {
      process.stderr.write(`${loadedLine(generator)}\n`);
      const reply = await streamReply(generator, promptIds(generator.tokenizer, text), samplingFrom(f), (piece) => process.stdout.write(piece));
      process.stdout.write('\n');
      process.stderr.write(`smolcluster: ${replySummary(reply)}\n`);
    } finally {
      release();
    }
  });
}

/** `generate --stages N`: the same, the model's layers in N stage processes (docs/GENERATE.md, "Across the cluster"). */
async function generateAcrossStages(f: GenerateFlags, text: string): Promise<void> {
  const { described, pipeline } = await startStagesFromFlags('generate', f, 1);
  try {
    process.stderr.write(`${loadedLine(described)}\n`);
    const reply = await streamReply(described, promptIds(described.tokenizer, text), samplingFrom(f), (piece) => process.stdout.write(piece), (p, o) => pipelinedStream(pipeline.batch, p, o));
    process.stdout.write('\n');
    process.stderr.write(`smolcluster: ${replySummary(reply)}\n`);
  } finally {
    await pipeline.close();
  }
}
