/**
 * The registration path: the one module through which tensor/dispatch.ts reaches concrete backends
 * (test/layering.test.ts holds it to that). The cpu's built-in backends: js, always registered, and
 * native, registered when its addon loads. Other backends (webgpu) register themselves through
 * dispatch's registerBackend when they are loaded.
 */
export { jsBackend } from './js.js';
export { loadNativeBackend } from './native.js';
