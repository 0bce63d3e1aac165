/**
 * bench:generate's child for llama.cpp, through the npm package node-llama-cpp (installed beside the project, not a dependency,
 * imported only here, so the bench runs without it): the GGUF file written from the same weights,
 * cpu only, one thread, greedy (temperature 0). A batch is that many context sequences evaluated at
 * once: node-llama-cpp gathers the concurrent sequences' tokens into one llama_decode per step.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './child.js';
import { type GenerationRun, WARM_UP_GENERATIONS, WARM_UP_TOKENS, besideRun, cpuNow, prepareBesideRun } from './generation_run.js';

type Token = number;
interface Sequence { evaluate(tokens: Token[], options?: { temperature?: number }): AsyncGenerator<Token, void, void>; dispose(): void }
interface Context { getSequence(): Sequence; dispose(): Promise<void> }
interface Model { createContext(o: { contextSize: number; sequences: number; threads: number; batchSize: number }): Promise<Context>; dispose(): Promise<void> }
interface Llama { loadModel(o: { modelPath: string; gpuLayers?: number }): Promise<Model>; dispose(): Promise<void> }

/**
 * Installed beside the project by `npm install --no-save node-llama-cpp@3.22.1` (.ci/run does), not a
 * dev dependency: a lock file naming it must list its prebuilt binaries for every platform, and
 * registry mirrors without the macOS and Windows ones then fail `npm ci`.
 */
const LLAMA_CPP_PACKAGE: string = 'node-llama-cpp';

/** node-llama-cpp's getLlama, or why it cannot be had. */
export async function loadNodeLlamaCpp(): Promise<{ getLlama: (o: object) => Promise<Llama>; version: string } | string> {
  try {
    // By name at run time: not a dependency of ours (see LLAMA_CPP_PACKAGE), so the type checker must not look for it.
    const mod = (await import(LLAMA_CPP_PACKAGE)) as { getLlama: (o: object) => Promise<Llama> };
    // The package's own package.json (its exports map does not list it).
    const file = join(packageRoot(import.meta.resolve(LLAMA_CPP_PACKAGE)), 'package.json');
    const version = (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
    return { getLlama: mod.getLlama, version };
  } catch (e) {
    return `node-llama-cpp not installed (${(e as Error).message.split('\n')[0]})`;
  }
}

/** Each sequence's generation of `newTokens` tokens, all at once; the times every sequence's first and last tokens came. */
async function generateTogether(sequences: Sequence[], prompts: number[][], newTokens: number): Promise<{ first: number; last: number; firstCpu: number; ids: number[] }> {
  const t0 = performance.now();
  const firsts: number[] = [];
  let firstCpu = 0;
  const ids: number[][] = prompts.map(() => []);
  await Promise.all(sequences.map(async (seq, s) => {
    for await (const token of seq.evaluate(prompts[s], { temperature: 0 })) {
      if (ids[s].length === 0) {
        firsts.push(performance.now());
        firstCpu = cpuNow(); // the last sequence's first token: prefill done
      }
      ids[s].push(token);
      if (ids[s].length >= newTokens) break;
    }
  }));
  return { first: Math.max(...firsts) - t0, last: performance.now() - t0, firstCpu, ids: ids[0] };
}

async function timedRun(model: Model, prompts: number[][], newTokens: number, threads: number): Promise<GenerationRun> {
  const context = await model.createContext({ contextSize: 256 * prompts.length, sequences: prompts.length, threads, batchSize: 512 });
  try {
    const sequences = prompts.map(() => context.getSequence());
    const c0 = cpuNow();
    const { first, last, firstCpu, ids } = await generateTogether(sequences, prompts, newTokens);
    const c2 = cpuNow();
    for (const s of sequences) s.dispose();
    return { batch: prompts.length, promptTokens: prompts[0].length, newTokens, prefillMs: first, decodeMs: last - first, cpuShare: (c2 - c0) / last, decodeCpuMs: c2 - firstCpu, firstIds: ids };
  } finally {
    await context.dispose();
  }
}

/** Warm-up (WARM_UP_GENERATIONS batch-1 runs of WARM_UP_TOKENS), then one timed run per batch size. */
export async function llamaCppGeneration(ggufPath: string, prompts: number[][], batches: number[], newTokens: number, threads = 1): Promise<{ runs: GenerationRun[]; version: string }> {
  const lib = await loadNodeLlamaCpp();
  if (typeof lib === 'string') throw new Error(lib);
  const llama = await lib.getLlama({ gpu: false, maxThreads: threads, logLevel: 'error' });
  const model = await llama.loadModel({ modelPath: ggufPath, gpuLayers: 0 });
  try {
    prepareBesideRun();
    for (let i = 0; i < WARM_UP_GENERATIONS; i++) await timedRun(model, prompts.slice(0, 1), WARM_UP_TOKENS, threads);
    const runs: GenerationRun[] = [];
    for (const b of batches) {
      const run = (): Promise<GenerationRun> => timedRun(model, prompts.slice(0, b), newTokens, threads);
      runs.push(await (b === 1 ? besideRun(run) : run()));
    }
    return { runs, version: lib.version };
  } finally {
    await model.dispose();
    await llama.dispose();
  }
}
