// Each kernel family registers its N-API entry points on the module's exports (module.cc).
#pragma once

#include <node_api.h>

namespace sc {

void registerCpuFeatures(napi_env env, napi_value exports);
void registerThreads(napi_env env, napi_value exports);
void registerGemm(napi_env env, napi_value exports);
void registerElementwise(napi_env env, napi_value exports);
void registerLayout(napi_env env, napi_value exports);
void registerReduce(napi_env env, napi_value exports);
void registerRowArgmax(napi_env env, napi_value exports);
void registerSoftmax(napi_env env, napi_value exports);
void registerConv(napi_env env, napi_value exports);
void registerPool(napi_env env, napi_value exports);
void registerNorm(napi_env env, napi_value exports);
void registerEmbedding(napi_env env, napi_value exports);
void registerOptim(napi_env env, napi_value exports);
void registerAttention(napi_env env, napi_value exports);
void registerShm(napi_env env, napi_value exports);
void registerFileMap(napi_env env, napi_value exports);
void registerMemory(napi_env env, napi_value exports);
void registerBf16(napi_env env, napi_value exports);
void registerBf16Packed(napi_env env, napi_value exports);
void registerAttentionBf16(napi_env env, napi_value exports);
void registerAttentionDecode(napi_env env, napi_value exports);
void registerLlama(napi_env env, napi_value exports);
void registerLlamaDecode(napi_env env, napi_value exports);
void registerQuant(napi_env env, napi_value exports);
void registerQuantize(napi_env env, napi_value exports);
void registerLinearWidened(napi_env env, napi_value exports);

}  // namespace sc
