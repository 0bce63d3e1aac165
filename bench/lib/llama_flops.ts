/** Training FLOPs per token of a Llama-family model (src/nn/models/flops.ts), for the benches' MFU. */
export { llamaMatmulParams, llamaTrainingFlopsPerToken } from '../../src/nn/models/flops.js';
