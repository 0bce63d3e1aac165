/**
 * The webgpu backend in tests. On a machine without a GPU, Dawn finds SwiftShader (Vulkan on the
 * CPU) through the ICD file Debian's chromium ships: the tests point the Vulkan loader at it unless
 * VK_ICD_FILENAMES already says otherwise (set it to a hardware driver's ICD to test on a GPU).
 * Under CI=true a webgpu backend that does not load is a failure (list.test.ts).
 */
import { existsSync } from 'node:fs';
import { loadWebGpuBackend, type WebGpuLoad } from '../../src/tensor/backends/webgpu/index.js';

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export function useSwiftShaderUnlessConfigured(): void {
  if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
}

export function loadWebGpuForTests(): Promise<WebGpuLoad> {
  useSwiftShaderUnlessConfigured();
  return loadWebGpuBackend();
}
