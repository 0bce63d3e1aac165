/**
 * Generation across the cluster (`generate` and `serve` with --stages N, and the `stage` processes):
 * the model's layers split into N pipeline stages on N processes, placed by measured speed and
 * memory as `train --pipeline-stages` places training's (docs/GENERATE.md, "Across the cluster").
 */
import { QUANT_SCHEMES } from './choices.js';
import { nonNegativeInt, oneOf, positiveInt, positiveNumber } from './parsers.js';
import { choice, valued } from './spec.js';

export const STAGE_OPTIONS = {
  stages: valued({ arg: '<n>', help: 'split the model\'s layers into N pipeline stages on N processes, placed by measured speed and memory as train --pipeline-stages places them (for a model too big for one node: on one that fits it is slower); 1: this process alone (default)', parse: positiveInt, default: 1, forward: false }),
  stageMaster: valued<string>({ arg: '<host:port>', help: 'with --stages: host the stages\' rendezvous at this address and wait for `smolcluster stage` processes on other hosts (same SMOLCLUSTER_TOKEN), instead of starting them here on 127.0.0.1', forward: false }),
  stageTimeout: valued({ arg: '<s>', help: 'with --stages: seconds the stages may take to start, and a step to come back, before it fails naming the late stage', parse: positiveNumber, default: 30, forward: false }),
} as const;

/** `smolcluster stage`: one stage process of a pipeline (started by --stages, or by hand on another host). */
export const STAGE_PROCESS_OPTIONS = {
  model: valued<string>({ arg: '<src>', help: 'the model, as the driver names it (a Hugging Face folder, a model file, or a run\'s folder on this host)', forward: false }),
  adapter: valued<string>({ arg: '<dir>', help: 'the driver\'s --adapter: a PEFT LoRA adapter folder on this host, merged into this stage\'s layers at load (the same contents as the driver\'s, or the stage is refused)', forward: false }),
  quantize: choice(QUANT_SCHEMES, { arg: '<scheme>', help: 'the driver\'s --quantize: this stage\'s weight matrices quantized at load, in the formats the whole model\'s plan gives them (the same scheme as the driver\'s, or the stage is refused)', parse: oneOf(QUANT_SCHEMES), forward: false }),
  stages: valued({ arg: '<n>', help: 'the pipeline\'s stages (the driver\'s --stages)', parse: positiveInt, forward: false }),
  rank: valued({ arg: '<r>', help: 'this stage\'s rank, 1..N-1 (rank 0 is the driver: generate or serve)', parse: nonNegativeInt, forward: false }),
  stageMaster: valued<string>({ arg: '<host:port>', help: 'the driver\'s rendezvous address (its --stage-master)', forward: false }),
  stageTimeout: valued({ arg: '<s>', help: 'seconds to meet the other stages', parse: positiveNumber, default: 30, forward: false }),
  maxBatch: valued({ arg: '<n>', help: 'rows decoded together at most (the driver\'s --max-batch; sizes the KV caches the placement counts)', parse: positiveInt, default: 8, forward: false }),
  precision: choice(['fp32', 'bf16'], { arg: '<p>', help: 'fp32 (default) or bf16: the driver\'s --precision', default: 'fp32', forward: false }),
  threads: valued({ arg: '<n>', help: 'compute threads (default: SMOLCLUSTER_THREADS, else every core)', parse: positiveInt, forward: false }),
} as const;
