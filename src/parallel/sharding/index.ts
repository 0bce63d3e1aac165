export { type ShardLayout, type ShardRule, assembleShards, shardShape, sliceShard } from './shard_rule.js';
export { PendingGroup, type TensorParallelComm, groupReducer } from './group_reducer.js';
export { checkTensorParallel } from './check.js';
export { type TensorParallelModel, assembleFull, buildTensorParallelModel, isTensorParallelModel, loadShard, shardLayout } from './load.js';
