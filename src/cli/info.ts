import { spawnSync } from 'node:child_process';
import { Command, Option } from 'commander';
import { positiveInt } from '../config/options/parsers.js';
import { availableMemory, formatWeightReport, weightReport } from '../generate/weight_report.js';
import type { ModelSpec } from '../nn/models/index.js';
import { defaultConfig } from '../train/run/config.js';
import { initIsQuantized } from '../train/run/init_source.js';
import { type TrainingMemory, estimateTrainingMemory } from '../train/run/memory_estimate.js';
import { formatNodeInfo, nodeInfo, nodeInfoFile } from '../launch/node_info.js';
import { nativeAddonSource, nativeCpuTable } from '../tensor/backends/native.js';
import { backend } from '../tensor/dispatch.js';
import { listAdapters, type AdapterSummary } from '../tensor/backends/webgpu/index.js';

/** `smolcluster info [--json]`: what this node brings to a cluster. */
export function infoCommand(): Command {
  return new Command('info')
    .description('what this node brings: cores, memory, kernel libraries, network interfaces (kind, addresses), GPUs seen, WebGPU adapters')
    .option('--json', 'one JSON object instead of text')
    .option('--model <src>', 'a GGUF file or Hugging Face folder: its weights\' bytes per format, what each --quantize scheme holds, what fine-tuning it would hold (full, LoRA, QLoRA), and whether each fits this machine\'s memory (docs/QUANTIZE.md)')
    .option('--lora-rank <r>', 'with --model: the LoRA and QLoRA rows\' rank', positiveInt, 16)
    .option('--seq <n>', 'with --model: the tokens of a training window the estimates assume (at most the model\'s positions)', positiveInt, FINE_TUNE_WINDOW)
    .addOption(new Option('--probe-webgpu', 'print the WebGPU adapters as JSON (what info runs in a child process)').hideHelp())
    .action(async (flags: { json?: boolean; model?: string; loraRank: number; seq: number; probeWebgpu?: boolean }) => {
      if (flags.probeWebgpu) return void process.stdout.write(`${JSON.stringify(await listAdapters())}\n`);
      if (flags.model !== undefined) return printWeightReport(flags.model, flags.json === true, { rank: flags.loraRank, seq: flags.seq });
      const kernels = backend();
      const source = kernels.name === 'native' ? nativeAddonSource() : null;
      const info = nodeInfo(kernels.description, source && { path: source.path, origin: source.origin, dnnlLibrary: source.dnnlLibrary, cpu: nativeCpuTable() ?? undefined });
      const adapters = adaptersQuietly();
      if (flags.json) {
        const webgpu = typeof adapters === 'string' ? { webgpu_unavailable: adapters } : { webgpu_adapters: adapters.map(adapterJson) };
        process.stdout.write(`${JSON.stringify({ ...nodeInfoFile(info), ...webgpu }, null, 2)}\n`);
      } else {
        process.stdout.write(`${formatNodeInfo(info)}\n${formatAdapters(adapters)}\n`);
      }
    });
}

/**
 * The WebGPU adapters, listed by a child process of this command: Dawn's loaders write their own
 * lines to the process's stderr ("vkCreateInstance: Found no drivers!" on a machine without a GPU),
 * which no JavaScript can hold back; the child's stderr is dropped (shown with SMOLCLUSTER_VERBOSE=1),
 * and what it found is one line of info's own.
 */
function adaptersQuietly(): AdapterSummary[] | string {
  const child = spawnSync(process.execPath, [process.argv[1], 'info', '--probe-webgpu'], { encoding: 'utf8', timeout: 60_000 });
  if (process.env.SMOLCLUSTER_VERBOSE === '1' && child.stderr) process.stderr.write(child.stderr);
  try {
    return JSON.parse(child.stdout) as AdapterSummary[] | string;
  } catch {
    return `the adapter probe ended without a list (${child.error?.message ?? `exit ${child.status ?? child.signal}`})`;
  }
}

/** What the fine-tuning rows assume: LoRA's rank and the window's tokens. */
interface TuningSetting { rank: number; seq: number }

async function printWeightReport(source: string, json: boolean, setting: TuningSetting): Promise<void> {
  const report = await weightReport(source);
  const available = availableMemory();
  const tuning = fineTuningEstimates(report.path, report.spec, setting);
  if (json) {
    const fineTuning = tuning.map((t) => ({ method: t.method, estimated_bytes: t.memory.total }));
    process.stdout.write(`${JSON.stringify({ ...report, available_bytes: available, fine_tuning: fineTuning }, null, 2)}\n`);
    return;
  }
  const lines = tuning.map((t) => `fine-tune  ${t.method.padEnd(34)} ${(t.memory.total / 2 ** 30).toFixed(2).padStart(7)} GiB a process${t.memory.total <= available ? '' : ' (does not fit)'}`);
  const window = 'context' in report.spec ? Math.min(setting.seq, report.spec.context) : setting.seq;
  const assumed = tuning.length > 0 ? [`           (estimated before loading: ${window} tokens, batch 1, --activation-checkpointing, AdamW; docs/FINETUNE.md)`] : [];
  process.stdout.write(`${[formatWeightReport(report, available), ...lines, ...assumed].join('\n')}\n`);
}

/** The window `info --model`'s fine-tuning estimates assume by default (at most the model's positions). */
const FINE_TUNE_WINDOW = 512;


/**
 * What fine-tuning the model would hold per process (train/run/memory_estimate.ts): full
 * fine-tuning and LoRA of rank r on every projection over a float base, and QLoRA over a quantized
 * one (the file's own blocks, or NF4 / Q4_K_M at load).
 */
function fineTuningEstimates(path: string, spec: ModelSpec, setting: TuningSetting): { method: string; memory: TrainingMemory }[] {
  if (spec.type !== 'llama' && spec.type !== 'gpt2') return [];
  const targets = spec.type === 'gpt2' ? ['c_attn', 'c_proj', 'c_fc'] : ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
  const base = { ...defaultConfig(spec.type === 'gpt2' ? 'gpt2-tiny' : 'llama-tiny'), init: path, optimizer: 'adamw' as const, batchSize: 1, activationCheckpointing: true };
  const lora = { ...base, loraRank: setting.rank, loraTargets: targets };
  const window = Math.min(setting.seq, spec.context);
  const r = `r=${setting.rank}`;
  const rows: [string, typeof base][] = initIsQuantized(path)
    ? [[`QLoRA ${r} over its blocks`, lora]]
    : [
      ['full (float32, AdamW)', base],
      [`LoRA ${r} (float32 base)`, lora],
      [`LoRA ${r} (bf16 base)`, { ...lora, loraBaseDtype: 'bf16' }],
      ...(spec.type === 'llama' ? [[`QLoRA ${r} (nf4 at load)`, { ...lora, loraBaseDtype: 'nf4' }], [`QLoRA ${r} (q4_k_m at load)`, { ...lora, loraBaseDtype: 'q4_k_m' }]] as [string, typeof base][] : []),
    ];
  return rows.map(([method, config]) => ({ method, memory: estimateTrainingMemory(config, spec, window)! }));
}

/** The adapters Dawn offers, one line each (vendor, architecture, kind, limits, features), or why none. */
export function formatAdapters(adapters: AdapterSummary[] | string): string {
  if (typeof adapters === 'string') return `webgpu      unavailable: ${adapters}`;
  if (adapters.length === 0) return 'webgpu      no GPU adapter';
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
