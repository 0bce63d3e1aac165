/** `smolcluster serve`: an OpenAI-compatible HTTP server over one model, with continuous batching. */
import { Command } from 'commander';
import { basename, resolve } from 'node:path';
import { type OptionValues } from '../config/options/index.js';
import { SERVE_OPTIONS } from '../config/options/serve.js';
import { wildcardUrls } from '../dashboard/exposure.js';
import { type Generator, loadGenerator } from '../generate/load_generator.js';
import { backend } from '../tensor/dispatch.js';
import { followRun, untilFirstWeights, weightsKey } from '../serve/follow.js';
import type { ServedModel } from '../serve/served_model.js';
import { startModelServer } from '../serve/server.js';
import { ConfigError, SmolError } from '../util/errors.js';
import { describeInferenceMemory, gb } from '../generate/inference_memory.js';
import type { NamedAdapter } from '../nn/lora/served_adapters.js';
import { weightsRead } from './generation_flags.js';
import { addOptions } from './option_table.js';
import { startStagesFromFlags } from './stages_driver.js';

export type ServeFlags = OptionValues<typeof SERVE_OPTIONS>;

/** A loaded generator as the server serves it, under `id`. */
export function servedModel(g: Generator, id: string, adapters: readonly NamedAdapter[] = []): ServedModel {
  return { id, model: g.model, tokenizer: g.tokenizer, eosIds: g.eosIds, context: g.spec.context, chatTemplate: g.chatTemplate, adapters: adapters.map((a) => a.name) };
}

/** --lora-modules NAME=DIR, each checked: both parts given, a name that is not the base's (the loader reads the folder). */
export function loraModules(given: readonly string[] | undefined, baseId: string): NamedAdapter[] {
  return (given ?? []).map((text) => {
    const at = text.indexOf('=');
    const [name, dir] = [text.slice(0, at).trim(), text.slice(at + 1).trim()];
    if (at < 0 || name === '' || dir === '') throw new ConfigError('command line', '--lora-modules', `${JSON.stringify(text)}: expected NAME=DIR (a PEFT adapter folder served as model NAME)`);
    if (name === baseId) throw new ConfigError('command line', '--lora-modules', `${name} is the base model's id (--model-name): give the adapter another name`);
    return { name, dir };
  });
}

/** Resolves on SIGINT or SIGTERM. */
function untilSignalled(): Promise<void> {
  return new Promise((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export function serveCommand(): Command {
  return addOptions(new Command('serve'), SERVE_OPTIONS)
    .description('serve a model over an OpenAI-compatible HTTP API (/v1/models, /v1/completions, /v1/chat/completions) with a chat page at /')
    .action((flags: ServeFlags, cmd: Command) => runServe(flags, untilSignalled(), undefined, { maxBatchGiven: cmd.getOptionValueSource('maxBatch') !== 'default' }));
}

/**
 * serve's work: loads the model, serves it (following a run with --follow) until `stopped`;
 * `onListening` gets the URL. `maxBatchGiven` false (--max-batch left at its default): fewer
 * requests decoded together where that many do not fit the memory available (load_generator.ts fitRows).
 */
export async function runServe(flags: ServeFlags, stopped: Promise<void>, onListening?: (url: string) => void, o: { maxBatchGiven?: boolean } = {}): Promise<void> {
  const source = flags.follow ?? flags.model;
  if (!source) throw new SmolError('SERVE', 'serve: give --model SRC (or --follow experiments/RUN)');
  if (flags.follow && flags.model) throw new SmolError('SERVE', 'serve: give --model or --follow, not both');
  const token = flags.token ?? process.env.SMOLCLUSTER_SERVE_TOKEN;
  const id = flags.modelName ?? basename(resolve(source));
  const adapters = loraModules(flags.loraModules, id);
  // Over --stages the driver sets them too (stages_driver.ts), with this process's.
  if (flags.threads !== undefined) backend().setThreads(flags.threads);
  if (flags.stages > 1) {
    if (adapters.length > 0) throw new ConfigError('command line', '--lora-modules', 'adapters served by name run in one process, not over --stages');
    return serveAcrossStages(flags, id, token, stopped, onListening);
  }
  const fitRows = o.maxBatchGiven === false;
  const load = (): Promise<Generator> => loadGenerator(source, { tokenizer: flags.tokenizer, adapter: flags.adapter, adapters, quantize: flags.quantize, device: flags.device, precision: flags.precision, rows: flags.maxBatch, fitRows });
  if (flags.follow && !await untilFirstWeights(flags.follow, flags.followEvery * 1000, stopped, (why) => process.stderr.write(`smolcluster: --follow: ${why}; waiting for training to write one (looking every ${flags.followEvery} s)\n`))) return;
  const servedKey = flags.follow ? weightsKey(flags.follow) : '';
  const first = await load();
  const maxBatch = fitRows && first.memory ? first.memory.need.rows : flags.maxBatch;
  if (maxBatch < flags.maxBatch) process.stderr.write(`smolcluster: --max-batch ${flags.maxBatch} would not fit the memory available: serving ${maxBatch} at a time (--max-batch N chooses)\n`);
  const server = await startModelServer(servedModel(first, id, adapters), {
    host: flags.host, port: flags.port, maxBatch, token, precision: flags.precision, queueTimeoutMs: flags.queueTimeout * 1000,
  });
  process.stderr.write(`smolcluster: serving ${id} (${weightsRead(first)})${adapters.length ? ` and its adapters ${adapters.map((a) => a.name).join(', ')}` : ''} at ${server.url}/v1 — chat page at ${server.url}/ (Ctrl-C to stop)\n`);
  for (const url of wildcardUrls(flags.host, server.port)) process.stderr.write(`smolcluster: reachable at ${url}\n`);
  if (first.memory) process.stderr.write(`smolcluster: memory ${describeInferenceMemory(first.memory.need)} of ${gb(first.memory.available)} available\n`);
  onListening?.(server.url);
  const follower = flags.follow
    ? followRun(flags.follow, servedKey, flags.followEvery * 1000, async () => {
      const next = await load();
      server.swap(servedModel(next, id, adapters));
      return weightsRead(next);
    }, {
      onReloaded: (path) => process.stderr.write(`smolcluster: now serving ${path}\n`),
      onError: (e) => process.stderr.write(`smolcluster: --follow kept the served model: ${(e as Error).message}\n`),
    })
    : null;
  await stopped;
  follower?.stop();
  await server.close();
}

/**
 * `serve --stages N`: the model's layers in N stage processes, requests decoded through the pipeline.
 * A lost stage fails the requests in flight and answers new ones 503 naming it; /v1/models still answers.
 */
async function serveAcrossStages(flags: ServeFlags, id: string, token: string | undefined, stopped: Promise<void>, onListening?: (url: string) => void): Promise<void> {
  if (flags.follow) throw new SmolError('SERVE', 'serve: --follow is not taken with --stages (give --model)');
  const { described, pipeline } = await startStagesFromFlags('serve', flags, flags.maxBatch);
  try {
    const served = { id, rows: pipeline.batch, tokenizer: described.tokenizer, eosIds: described.eosIds, context: described.spec.context, chatTemplate: described.chatTemplate };
    const server = await startModelServer(served, {
      host: flags.host, port: flags.port, maxBatch: flags.maxBatch, token, precision: flags.precision, queueTimeoutMs: flags.queueTimeout * 1000,
    });
    process.stderr.write(`smolcluster: serving ${id} (${weightsRead(described)}) over ${flags.stages} pipeline stages at ${server.url}/v1 (Ctrl-C to stop)\n`);
    onListening?.(server.url);
    await stopped;
    await server.close();
  } finally {
    await pipeline.close();
  }
}
