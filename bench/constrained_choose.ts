/**
 * What constrained decoding costs a token (issue 48 §5), apart from the model: cpu µs of
 * Sequence.choose over GPT-2's vocabulary (50257) for 8 sequences, free and under bench:serve's
 * json_schema (token_mask.ts), greedy as bench:serve, interleaved runs in one process, cpu time (user + system) so the
 * load of a shared machine does not enter. Rows are random logits (64 of them, in turn), so the
 * sequences wander through the schema's states (keys, strings, arrays) as a model's would.
 * Also: building the vocabulary's tries once, and the first run's masks (every state new).
 * Divide by a served token's cost (bench:serve: 8 streams of GPT-2 124M) for the share it takes.
 *
 *   node dist/bench/constrained_choose.js [--runs 9] [--tokens 128]
 */
import { parseArgs } from 'node:util';
import { makeTokenizer } from '../src/data/tokenizer.js';
import { compileSchema } from '../src/generate/json_schema_grammar.js';
import { Sequence } from '../src/generate/sequence.js';
import { JsonGrammar, TokenVocabulary } from '../src/generate/token_mask.js';
import { Rng } from '../src/util/rng.js';
import { median } from './lib/index.js';

const SCHEMA = { type: 'object', properties: { title: { type: 'string' }, lines: { type: 'array', items: { type: 'string' } } }, required: ['title', 'lines'], additionalProperties: false };
const STREAMS = 8;

const cpuMs = (since: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

/** Cpu µs a chosen token of STREAMS sequences decoding `tokens` each (rows drawn from `rows`). */
function perToken(rows: readonly Float32Array[], tokens: number, seed: number, constraint?: { grammar: JsonGrammar; vocab: TokenVocabulary }): number {
  const seqs = Array.from({ length: STREAMS }, (_, i) => new Sequence([1], { maxNewTokens: tokens, temperature: 0, seed: seed * STREAMS + i, eosIds: [50256], ...(constraint ? { constraint } : {}) }));
  const before = process.cpuUsage();
  let chosen = 0;
  for (let step = 0; step < tokens; step++) {
    for (const [i, s] of seqs.entries()) {
      if (s.stopped()) continue;
      s.choose(rows[(step * STREAMS + i) % rows.length]);
      chosen++;
    }
  }
  return (cpuMs(before) * 1000) / chosen;
}

const { values } = parseArgs({ options: { runs: { type: 'string' }, tokens: { type: 'string' } } });
const runs = Number(values.runs ?? 9);
const tokens = Number(values.tokens ?? 128);
const tokenizer = makeTokenizer('gpt2');
const rng = new Rng(1);
const rows = Array.from({ length: 64 }, () => Float32Array.from({ length: tokenizer.vocabSize }, () => rng.normal() * 2));

let since = process.cpuUsage();
const vocab = new TokenVocabulary(tokenizer.vocabSize, (ids) => tokenizer.decode(ids), tokenizer.vocabSize, [50256]);
const buildMs = cpuMs(since);
const constraint = { grammar: new JsonGrammar(compileSchema(SCHEMA, true).root), vocab };
since = process.cpuUsage();
const first = perToken(rows, tokens, 0, constraint);
const free: number[] = [];
const constrained: number[] = [];
for (let r = 1; r <= runs; r++) {
  free.push(perToken(rows, tokens, r));
  constrained.push(perToken(rows, tokens, r, constraint));
}
console.log(`constrained_choose — ${STREAMS} sequences × ${tokens} tokens, GPT-2's vocabulary (${tokenizer.vocabSize}), greedy (as bench:serve), cpu time, median of ${runs} interleaved runs`);
console.log('| | cpu µs a token |');
console.log('|---|---|');
console.log(`| free | ${median(free).toFixed(1)} |`);
console.log(`| constrained (json_schema) | ${median(constrained).toFixed(1)} |`);
console.log(`| constrained, first run (every state's mask new) | ${first.toFixed(1)} |`);
console.log(`\nbuilding the vocabulary's tries (once per tokenizer): ${buildMs.toFixed(0)} ms cpu`);
console.log(JSON.stringify({ streams: STREAMS, tokens, runs, free, constrained, first, buildMs }));
