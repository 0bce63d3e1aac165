export { type ShardLayout, type ShardRule, assembleShards, shardShape, sliceShard } from './shard_rule.js';
export { TensorParallelTape, type TensorParallelComm } from './tape.js';
export { ColumnParallelLinear, RowParallelLinear } from './layers.js';
export { TensorParallelModule, checkTensorParallel } from './model.js';
export { TensorParallelGpt2 } from './gpt2.js';
export { TensorParallelBert } from './bert.js';
export { assembleFull, buildTensorParallelModel, loadShard, shardLayout } from './load.js';
