/**
 * --help is derived from the option tables (src/config/options/): every training command still
 * lists every one of its flags with its meaning, and the choices of those that take one of a set.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Command } from 'commander';
import { serverCommand } from '../../src/cli/server.js';
import { storeCommand } from '../../src/cli/store.js';
import { trainCommand } from '../../src/cli/train.js';
import { workerCommand } from '../../src/cli/worker.js';
import {
  CONFIG_FILE_OPTIONS, DASHBOARD_OPTIONS, type OptionTable, SINK_OPTIONS, TRAIN_OPTIONS, WORKER_DASHBOARD_OPTIONS, longFlag,
} from '../../src/config/options/index.js';

/** Commander wraps help text to the terminal: compare with whitespace folded. */
const folded = (s: string): string => s.replace(/\s+/g, ' ');

function assertLists(cmd: Command, tables: OptionTable[]): void {
  const help = folded(cmd.helpInformation());
  for (const table of tables) {
    for (const [name, spec] of Object.entries(table)) {
      const flag = spec.arg === undefined ? longFlag(name) : `${longFlag(name)} ${spec.arg}`;
      assert.ok(help.includes(flag), `${cmd.name()} --help lacks ${flag}`);
      assert.ok(help.includes(folded(spec.help)), `${cmd.name()} --help lacks the meaning of ${flag}`);
      for (const c of spec.choices ?? []) assert.ok(help.includes(`"${c}"`), `${cmd.name()} --help lacks ${flag}'s choice ${c}`);
    }
  }
}

describe('--help of the training commands', () => {
  it('train lists every training, sink, dashboard and config-file flag with its meaning', () => {
    assertLists(trainCommand(), [TRAIN_OPTIONS, SINK_OPTIONS, DASHBOARD_OPTIONS, CONFIG_FILE_OPTIONS]);
  });

  it('worker and server list the training, sink, rank-0 dashboard and config-file flags; store the training flags', () => {
    assertLists(workerCommand(), [TRAIN_OPTIONS, SINK_OPTIONS, WORKER_DASHBOARD_OPTIONS, CONFIG_FILE_OPTIONS]);
    assertLists(serverCommand(), [TRAIN_OPTIONS, SINK_OPTIONS, WORKER_DASHBOARD_OPTIONS, CONFIG_FILE_OPTIONS]);
    assertLists(storeCommand(), [TRAIN_OPTIONS, CONFIG_FILE_OPTIONS]);
  });

  it('zero-config join: worker takes --advertise, --cluster-name, --discover and --discover-timeout; server and store the master\'s two', () => {
    const worker = folded(workerCommand().helpInformation());
    for (const flag of ['--advertise', '--cluster-name <name>', '--discover', '--discover-timeout <seconds>']) assert.ok(worker.includes(flag), `worker --help lacks ${flag}`);
    assert.match(worker, /--advertise announce the rendezvous store on the local network as _smolcluster\._tcp \(DNS-SD: .*never the token\)/);
    for (const cmd of [serverCommand(), storeCommand()]) {
      const help = folded(cmd.helpInformation());
      assert.ok(help.includes('--advertise') && help.includes('--cluster-name <name>'), `${cmd.name()} --help lacks --advertise or --cluster-name`);
      assert.ok(!/--discover find the master|--discover-timeout/.test(help), `${cmd.name()} --help offers --discover`);
    }
  });

  it('--backend says what it names, and --comm-backend the transport', () => {
    const help = folded(trainCommand().helpInformation());
    assert.match(help, /--backend <name> tensor backend native or js .*gloo .* means --comm-backend auto/);
    assert.match(help, /--comm-backend <name> communication backend: auto \(ranks on one host through shared memory, others over TCP\) or tcp/);
  });
});
