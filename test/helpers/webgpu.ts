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

/** The adapter the tests run on, as `--device gpu` names it: SwiftShader, unless VK_ICD_FILENAMES names another driver (a GPU's). */
export const TEST_ADAPTER = !process.env.VK_ICD_FILENAMES || process.env.VK_ICD_FILENAMES === SWIFTSHADER_ICD ? /swiftshader/i : /\S/;

/** The environment a child process needs to find SwiftShader (unless VK_ICD_FILENAMES names a driver). */
export const WEBGPU_CHILD_ENV = {
  VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD,
  XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp',
};

/**
 * Whether a child process finds a WebGPU adapter (`smolcluster info --json`): null when it does,
 * else why not. Tests that start processes probe this way rather than open Dawn themselves: with
 * Dawn loaded in the test process, its exited children were left unreaped and the test hung.
 */
export async function webGpuMissingInChild(): Promise<string | null> {
  const { runCli } = await import('./cli.js');
  const info = await runCli(['info', '--json'], { env: WEBGPU_CHILD_ENV, timeoutMs: 60_000 });
  if (info.code !== 0) return `smolcluster info failed: ${info.stderr.trim().split('\n').pop()}`;
  const adapters = (JSON.parse(info.stdout) as { webgpu_adapters?: unknown[] }).webgpu_adapters ?? [];
  return adapters.length > 0 ? null : 'no WebGPU adapter found (smolcluster info)';
}
