import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { GENERATE_OPTIONS, type OptionValues } from '../config/options/index.js';
import { promptIds, replySummary, streamReply } from '../generate/reply.js';
import { ConfigError } from '../util/errors.js';
import { loadFromFlags, loadedLine, samplingFrom } from './generation_flags.js';
import { addOptions } from './option_table.js';

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
    const { generator, release } = await loadFromFlags('generate', f);
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
