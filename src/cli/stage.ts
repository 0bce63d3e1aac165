import { Command } from 'commander';
import { parseAddress } from '../comm/tcp/mesh.js';
import { type OptionValues, STAGE_PROCESS_OPTIONS } from '../config/options/index.js';
import { joinStages } from '../serve/stages/stage_cluster.js';
import { stageSource } from '../serve/stages/stage_source.js';
import { runStageWorker } from '../serve/stages/stage_worker.js';
import { backend } from '../tensor/dispatch.js';
import { ConfigError } from '../util/errors.js';
import { addOptions } from './option_table.js';

type StageFlags = OptionValues<typeof STAGE_PROCESS_OPTIONS>;

/**
 * `smolcluster stage`: one stage (rank 1..N-1) of a generation pipeline. `generate --stages N` and
 * `serve --stages N` start these on 127.0.0.1; on other hosts start them by hand against the
 * driver's --stage-master, with the same SMOLCLUSTER_TOKEN. Holds only its layers' weights and KV
 * caches; exits when the driver stops (or is lost).
 */
export function stageCommand(): Command {
  return addOptions(new Command('stage'), STAGE_PROCESS_OPTIONS)
    .description('one stage of a generation pipeline (generate/serve --stages N start these; by hand on other hosts with --stage-master)')
    .action(async (f: StageFlags) => {
      for (const [flag, value] of [['--model', f.model], ['--stages', f.stages], ['--rank', f.rank], ['--stage-master', f.stageMaster]] as const) {
        if (value === undefined) throw new ConfigError('command line', flag, `stage needs ${flag}`);
      }
      if (f.rank! < 1 || f.rank! >= f.stages!) throw new ConfigError('command line', '--rank', `a stage's rank is 1..${f.stages! - 1} (rank 0 is the driver), got ${f.rank}`);
      if (f.threads !== undefined) backend().setThreads(f.threads);
      const { spec, weights } = await stageSource(f.model!, { adapter: f.adapter, quantize: f.quantize });
      const { host, port } = parseAddress(f.stageMaster!);
      const joined = await joinStages({
        spec, weights, stages: f.stages!, rank: f.rank!, masterHost: host, masterPort: port, hostStore: false,
        timeoutMs: f.stageTimeout * 1000, maxBatch: f.maxBatch, precision: f.precision as 'fp32' | 'bf16',
        log: (line) => process.stderr.write(`smolcluster: ${line}\n`),
      });
      const [from, to] = joined.placement.ranges[f.rank!];
      process.stderr.write(`smolcluster: stage ${f.rank} holds layers ${from}..${to - 1} (${joined.stage.parameters().reduce((n, p) => n + p.size, 0)} weights)\n`);
      try {
        await runStageWorker({ transport: joined.cluster.transport, rows: joined.rows });
      } finally {
        await joined.cluster.close();
      }
    });
}
