/** Neural-network building blocks over the tensor engine. */
export { Module } from './module.js';
export { ParamArena, type ArenaEntry, type DecayRun } from './arena.js';
export * from './init.js';
export { Linear, type LinearOptions } from './layers/linear.js';
export { Conv2d, MaxPool2d, AvgPool2d, type Conv2dLayerOptions } from './layers/conv.js';
export { BatchNorm, LayerNorm } from './layers/norm.js';
export { Embedding } from './layers/embedding.js';
export { ReLU, GELU, Tanh, Sigmoid, Flatten, Dropout } from './layers/activation.js';
export { Sequential } from './layers/sequential.js';
export * from './optim/index.js';
export * from './models/index.js';
export * from './checkpoint.js';
export { saveSafetensors, loadSafetensors, loadSafetensorsModel, initFromFile, isSafetensorsPath, type SaveDtype } from './interchange/model_io.js';
export type { ModelLayer } from './layer_list.js';
export { checkpointLayer, enableActivationCheckpointing } from './activation_checkpointing.js';
export { readSafetensors, writeSafetensors, type SafetensorsFile, type SafeTensor, type SafeDtype, type WriteTensor, type WriteDtype } from './interchange/safetensors.js';
export * from './lora/index.js';
