/**
 * bench:gguf-memory's child for llama.cpp (node-llama-cpp, cpu only): FILE loaded as node-llama-cpp
 * loads it (mapped), a context of 128 positions, a 64-token prompt and NEW greedy tokens, so that
 * /usr/bin/time can read the process's resident peak beside ours.
 *
 *   node dist/bench/lib/gguf_memory_llama_cpp.js FILE [NEW] [THREADS]
 */
import { loadNodeLlamaCpp } from './generate_llama_cpp.js';

interface Sequence { evaluate(tokens: number[], options?: { temperature?: number }): AsyncGenerator<number, void, void> }
interface Context { getSequence(): Sequence }
interface Model { createContext(o: { contextSize: number; sequences: number; threads: number; batchSize: number }): Promise<Context> }

const [file, newTokens = '16', threads = '1'] = process.argv.slice(2);
const lib = await loadNodeLlamaCpp();
if (typeof lib === 'string') {
  process.stderr.write(`${lib}\n`);
  process.exit(3);
}
const llama = await lib.getLlama({ gpu: false, maxThreads: Number(threads), logLevel: 'error' }) as unknown as { loadModel(o: { modelPath: string; gpuLayers: number }): Promise<Model> };
const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
const context = await model.createContext({ contextSize: 128, sequences: 1, threads: Number(threads), batchSize: 128 });
// 64 prompt tokens, as the bytes tokenizer makes of ours (ids every vocabulary holds).
const prompt = Array.from({ length: 64 }, (_, i) => 32 + i);
let n = 0;
for await (const _ of context.getSequence().evaluate(prompt, { temperature: 0 })) if (++n >= Number(newTokens)) break;
process.stdout.write(`${n} tokens\n`);
process.exit(0);
