import { Command } from 'commander';
import { formatNodeInfo, nodeInfo, nodeInfoFile } from '../launch/node_info.js';
import { nativeAddonSource } from '../tensor/backends/native.js';
import { backend } from '../tensor/dispatch.js';

/** `smolcluster info [--json]`: what this node brings to a cluster. */
export function infoCommand(): Command {
  return new Command('info')
    .description('what this node brings: cores, memory, kernel libraries, network interfaces (kind, addresses), GPUs seen')
    .option('--json', 'one JSON object instead of text')
    .action((flags: { json?: boolean }) => {
      const kernels = backend();
      const source = kernels.name === 'native' ? nativeAddonSource() : null;
      const info = nodeInfo(kernels.description, source && { path: source.path, origin: source.origin, dnnlLibrary: source.dnnlLibrary });
      process.stdout.write(flags.json ? `${JSON.stringify(nodeInfoFile(info), null, 2)}\n` : `${formatNodeInfo(info)}\n`);
    });
}
