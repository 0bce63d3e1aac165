import { Command } from 'commander';
import { availableMemory, formatWeightReport, weightReport } from '../generate/weight_report.js';
import { formatNodeInfo, nodeInfo, nodeInfoFile } from '../launch/node_info.js';
import { nativeAddonSource, nativeCpuTable } from '../tensor/backends/native.js';
import { backend } from '../tensor/dispatch.js';
import { listAdapters, type AdapterSummary } from '../tensor/backends/webgpu/index.js';

/** `smolcluster info [--json]`: what this node brings to a cluster. */
export function infoCommand(): Command {
  return new Command('info')
    .description('what this node brings: cores, memory, kernel libraries, network interfaces (kind, addresses), GPUs seen, WebGPU adapters')
    .option('--json', 'one JSON object instead of text')
    .option('--model <src>', 'a GGUF file or Hugging Face folder: its weights\' bytes per format, what each --quantize scheme holds, and whether it fits this machine\'s memory (docs/QUANTIZE.md)')
    .action(async (flags: { json?: boolean; model?: string }) => {
      if (flags.model !== undefined) return printWeightReport(flags.model, flags.json === true);
      const kernels = backend();
      const source = kernels.name === 'native' ? nativeAddonSource() : null;
      const info = nodeInfo(kernels.description, source && { path: source.path, origin: source.origin, dnnlLibrary: source.dnnlLibrary, cpu: nativeCpuTable() ?? undefined });
      const adapters = await listAdapters();
      if (flags.json) {
        const webgpu = typeof adapters === 'string' ? { webgpu_unavailable: adapters } : { webgpu_adapters: adapters.map(adapterJson) };
        process.stdout.write(`${JSON.stringify({ ...nodeInfoFile(info), ...webgpu }, null, 2)}\n`);
      } else {
        process.stdout.write(`${formatNodeInfo(info)}\n${formatAdapters(adapters)}\n`);
      }
    });
}

async function printWeightReport(source: string, json: boolean): Promise<void> {
  const report = await weightReport(source);
  const available = availableMemory();
  process.stdout.write(json ? `${JSON.stringify({ ...report, available_bytes: available }, null, 2)}\n` : `${formatWeightReport(report, available)}\n`);
}

/** The adapters Dawn offers, one line each (vendor, architecture, kind, limits, features), or why none. */
export function formatAdapters(adapters: AdapterSummary[] | string): string {
  if (typeof adapters === 'string') return `webgpu      unavailable: ${adapters}`;
  if (adapters.length === 0) return 'webgpu      no adapter';
  return adapters.map((a) => {
    const name = [a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'unnamed adapter';
    const gib = (n: number): string => `${(n / 2 ** 30).toFixed(1)} GiB`;
    return `webgpu      ${name} (${a.software ? 'software' : 'hardware'}); max buffer ${gib(a.limits.maxBufferSize)}, ` +
      `max binding ${gib(a.limits.maxStorageBufferBindingSize)}, workgroup memory ${a.limits.maxComputeWorkgroupStorageSize} B; ` +
      `features: ${a.features.join(' ') || 'none'}`;
  }).join('\n');
}

function adapterJson(a: AdapterSummary): Record<string, unknown> {
  return {
    vendor: a.vendor,
    architecture: a.architecture,
    device: a.device,
    description: a.description,
    software: a.software,
    features: a.features,
    max_buffer_size: a.limits.maxBufferSize,
    max_storage_buffer_binding_size: a.limits.maxStorageBufferBindingSize,
    max_compute_workgroup_storage_size: a.limits.maxComputeWorkgroupStorageSize,
    max_compute_invocations_per_workgroup: a.limits.maxComputeInvocationsPerWorkgroup,
  };
}
