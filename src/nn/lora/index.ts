/** LoRA adapters over Linear layers, parameter freezing, and PEFT adapter folders. */
export { LoraLinear, type LoraShape } from './lora_linear.js';
export { FrozenBaseLinear } from './frozen_base.js';
export { applyLora, mergeLora, holdBaseInBf16, loraLayers, defaultLoraTargets, addLoraDelta, readParameterFloat32, type LoraOptions } from './apply.js';
export { freezeMatching, parameterPattern } from './freeze.js';
export { saveAdapter, loadAdapter, mergeAdapterInto, readAdapterConfig, readPeftAdapter, ADAPTER_CONFIG, ADAPTER_WEIGHTS, type AdapterConfig, type AdapterWeights } from './peft.js';
export { holdsAdaptersOnly, readCheckpointAdapter } from './checkpoint_adapter.js';
export { isAdapterParameter, peftTensorName, parsePeftTensorName } from './names.js';
export { AdapterDeltas, adapterDigest } from './adapter_deltas.js';
export { loadServedAdapters, type NamedAdapter } from './served_adapters.js';
