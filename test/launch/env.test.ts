import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { type TrainFlags, addTrainFlags, configFrom } from '../../src/cli/train_flags.js';
import { workerCommand } from '../../src/cli/worker.js';
import { parseHostPort, resolvePlacement } from '../../src/launch/env.js';
import { flagsToArgs } from '../../src/launch/worker_args.js';
import { runSignature } from '../../src/train/run/signature.js';
import { ConfigError } from '../../src/util/errors.js';

const TORCHRUN = { RANK: '1', WORLD_SIZE: '4', MASTER_ADDR: '10.0.0.5', MASTER_PORT: '29500' };

/** Asserts a ConfigError whose message names every string in `names`. */
function throwsNaming(fn: () => unknown, ...names: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${err}`);
    for (const n of names) assert.ok(err.message.includes(n), `"${err.message}" does not name ${n}`);
    return true;
  });
}

describe('resolvePlacement', () => {
  it('takes everything from the flags', () => {
    assert.deepEqual(resolvePlacement({ rank: 2, worldSize: 3, master: 'example.org:1234' }, {}), {
      rank: 2, worldSize: 3, masterHost: 'example.org', masterPort: 1234,
    });
  });

  it('falls back to torchrun\'s environment', () => {
    assert.deepEqual(resolvePlacement({}, TORCHRUN), { rank: 1, worldSize: 4, masterHost: '10.0.0.5', masterPort: 29500 });
  });

  it('flags win over the environment, each on its own', () => {
    assert.deepEqual(resolvePlacement({ rank: 3 }, TORCHRUN), { rank: 3, worldSize: 4, masterHost: '10.0.0.5', masterPort: 29500 });
    assert.deepEqual(resolvePlacement({ rank: 0, worldSize: 2 }, TORCHRUN), { rank: 0, worldSize: 2, masterHost: '10.0.0.5', masterPort: 29500 });
    assert.deepEqual(resolvePlacement({ master: '127.0.0.1:7000' }, TORCHRUN), { rank: 1, worldSize: 4, masterHost: '127.0.0.1', masterPort: 7000 });
    // --master replaces both variables: a bad MASTER_PORT it overrides does not matter.
    assert.equal(resolvePlacement({ master: '127.0.0.1:7000' }, { ...TORCHRUN, MASTER_PORT: 'x' }).masterPort, 7000);
    // Rank 0 is a value, not "unset".
    assert.equal(resolvePlacement({ rank: 0 }, TORCHRUN).rank, 0);
  });

  it('a missing value is an error naming the flag and the variable', () => {
    throwsNaming(() => resolvePlacement({}, { ...TORCHRUN, RANK: undefined }), '--rank', 'RANK');
    throwsNaming(() => resolvePlacement({}, { ...TORCHRUN, RANK: '' }), '--rank', 'RANK');
    throwsNaming(() => resolvePlacement({}, { ...TORCHRUN, WORLD_SIZE: undefined }), '--world-size', 'WORLD_SIZE');
    throwsNaming(() => resolvePlacement({}, { ...TORCHRUN, MASTER_ADDR: undefined }), '--master', 'MASTER_ADDR');
    // MASTER_PORT alone may be left out: 29500, as torch.distributed.
    assert.equal(resolvePlacement({}, { ...TORCHRUN, MASTER_PORT: undefined }).masterPort, 29500);
  });

  it('a malformed variable is an error naming it and its value', () => {
    throwsNaming(() => resolvePlacement({}, { ...TORCHRUN, RANK: 'one' }), 'RANK', '"one"');
    throwsNaming(() => resolvePlacement({}, { ...TORCHRUN, WORLD_SIZE: '-2' }), 'WORLD_SIZE', '"-2"');
    throwsNaming(() => resolvePlacement({}, { ...TORCHRUN, RANK: '1.5' }), 'RANK');
    throwsNaming(() => resolvePlacement({}, { ...TORCHRUN, MASTER_PORT: 'http' }), 'MASTER_PORT', '"http"');
    throwsNaming(() => resolvePlacement({}, { ...TORCHRUN, MASTER_PORT: '70000' }), 'MASTER_PORT', '70000');
    throwsNaming(() => resolvePlacement({}, { ...TORCHRUN, MASTER_PORT: '0' }), 'MASTER_PORT');
  });

  it('rank out of range', () => {
    throwsNaming(() => resolvePlacement({ rank: 4 }, TORCHRUN), '--rank', 'rank 4', '[0, 4)');
    throwsNaming(() => resolvePlacement({}, { ...TORCHRUN, RANK: '9' }), 'rank 9');
    throwsNaming(() => resolvePlacement({ rank: 1, worldSize: 1, master: 'h:1' }, {}), 'rank 1', '[0, 1)');
    assert.equal(resolvePlacement({ rank: 3 }, TORCHRUN).rank, 3);
  });

  it('host:port parsing, including bracketed IPv6', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:29500'), { host: '127.0.0.1', port: 29500 });
    assert.deepEqual(parseHostPort('node-1.lan:1'), { host: 'node-1.lan', port: 1 });
    assert.deepEqual(parseHostPort('[::1]:8080'), { host: '::1', port: 8080 });
    assert.deepEqual(parseHostPort('[fe80::1%eth0]:65535'), { host: 'fe80::1%eth0', port: 65535 });
    assert.deepEqual(resolvePlacement({ rank: 0, worldSize: 1, master: '[::1]:29500' }, {}).masterHost, '::1');
    for (const bad of ['127.0.0.1', '127.0.0.1:', ':29500', 'host:0', 'host:65536', 'host:12ab', '[::1]', 'host:-1', '']) {
      throwsNaming(() => parseHostPort(bad), '--master', `"${bad}"`);
    }
  });
});

/** The worker command's own flag set, with its action disarmed: parse only. */
function parseWorker(args: string[]): TrainFlags & { rank?: number; worldSize?: number; master?: string } {
  const cmd = workerCommand().exitOverride().action(() => {});
  cmd.parse(args, { from: 'user' });
  // The worker's own dashboard flags (rank 0 serves the cluster's) have defaults no train flag maps to.
  const { dashboardHost: _host, dashboardPort: _port, ...opts } = cmd.opts();
  return opts as TrainFlags;
}

/** What `train` would have parsed (the flags the launcher turns into worker arguments). */
function parseTrain(args: string[]): TrainFlags {
  const cmd = addTrainFlags(new Command('train')).exitOverride().action(() => {});
  cmd.parse(args, { from: 'user' });
  return cmd.opts();
}

const EVERY_FLAG = [
  '--model', 'mlp', '--hidden', '256,64', '--epochs', '3', '--batch-size', '48', '--lr', '0.0125', '--optimizer', 'adamw',
  '--momentum', '0.85', '--weight-decay', '0.0001', '--schedule', 'step', '--warmup-steps', '7', '--clip-grad-norm', '2.5',
  '--seed', '42', '--eval-every', '11', '--max-steps', '123', '--data-dir', '/data/mnist dir', '--name', 'run-1',
  '--experiments-dir', '/tmp/exp', '--output', '/tmp/out.json', '--save', '/tmp/model.bin', '--threads', '3', '--backend', 'js', '--comm-backend', 'tcp', '--device', 'auto',
  '--checksum-every', '13', '--timeout', '7.5', '--layers', '3', '--width', '96', '--heads', '6', '--context', '40', '--init', '/tmp/w.safetensors',
  '--dataset', 'synthetic-regression', '--fault', 'slow:rank=1:ms=5',
  '--strategy', 'ps', '--straggler-timeout', '0.25', '--ps-reply', 'gradients', '--server-trains', '--push-every', '3',
  '--staleness-bound', '2', '--quantize', 'int8', '--track-gradients', '--activation-checkpointing', '--iface', 'eth0',
  '--enable-load-balancing', '--load-balance-policy', 'hybrid', '--rebalance-interval', '6', '--balance-model', 'speed',
  '--grad-accum', '4', '--augment', '--data-file', '/data/book.txt', '--tokenizer', 'bytes',
  '--val-file', '/data/val.jsonl', '--val-fraction', '0.05', '--text-field', 'body', '--chat', '--packing', '--dropout', '0.2',
  '--checkpoint-every', '5', '--checkpoint-dir', '/tmp/ck', '--keep-checkpoints', '2', '--resume', 'auto', '--overwrite',
  '--bucket-mb', '2', '--first-bucket-mb', '0.5', '--overlap', '--compress', 'int8', '--powersgd-rank', '2',
  '--inner-steps', '10', '--outer-lr', '0.5', '--outer-momentum', '0.8', '--tensor-parallel', '2', '--expert-parallel', '2', '--zero', '2', '--eval-batch-size', '50',
  '--pipeline-stages', '2', '--micro-batches', '8', '--pipeline-schedule', 'gpipe',
  '--elastic', '--min-workers', '2', '--max-restarts', '1', '--precision', 'auto', '--save-dtype', 'bf16', '--save-quantize', 'q8_0', '--save-shard-size', '500MB',
  '--sample-every', '25', '--sample-prompt', 'Once upon a time', '--sample-temperature', '0.7', '--sample-tokens', '16',
  '--lora-rank', '8', '--lora-alpha', '16', '--lora-dropout', '0.05', '--lora-targets', 'q_proj,v_proj', '--lora-base-dtype', 'bf16',
  '--adapter', '/tmp/adapter dir', '--merge-lora', '--freeze', 'model.embed_tokens.*', '--min-lr', '0.001', '--decay-steps', '9',
  '--label-smoothing', '0.1', '--early-stopping-patience', '3', '--early-stopping-threshold', '0.01', '--save-best',
];

/** Flags the local launcher itself acts on; workers never see them. */
const LAUNCHER_ONLY = new Set(['--max-restarts']);

describe('flagsToArgs', () => {
  it('the test sets every train flag (so a new flag must be added here and to flagsToArgs)', () => {
    const longs = addTrainFlags(new Command('x')).options.map((o) => o.long!);
    const given = EVERY_FLAG.filter((a) => a.startsWith('--'));
    assert.deepEqual([...given].sort(), [...longs].sort());
  });

  it('round-trips every flag through the worker command', () => {
    const flags = parseTrain(EVERY_FLAG);
    const args = flagsToArgs(flags);
    for (const long of addTrainFlags(new Command('x')).options.map((o) => o.long!)) {
      assert.equal(args.includes(long), !LAUNCHER_ONLY.has(long), `${long} ${LAUNCHER_ONLY.has(long) ? 'is launcher-only but is' : 'is not'} passed to workers`);
    }
    const back = parseWorker(args);
    const { maxRestarts: _launcherOnly, ...workerFlags } = flags;
    assert.deepEqual(back, workerFlags);
    assert.equal(runSignature(configFrom(back, 3)), runSignature(configFrom(flags, 3)));
  });

  it('round-trips the defaults (nothing given) and the CNN model', () => {
    for (const argv of [[], ['--model', 'cnn', '--lr', '1e-7', '--hidden', '8']]) {
      const flags = parseTrain(argv);
      assert.deepEqual(parseWorker(flagsToArgs(flags)), flags);
      assert.deepEqual(configFrom(parseWorker(flagsToArgs(flags)), 1), configFrom(flags, 1));
    }
  });

  it('the launcher\'s resolved name and thread count reach the workers', () => {
    const flags = { ...parseTrain([]), name: 'x', threads: 2 };
    const back = parseWorker(flagsToArgs(flags));
    assert.equal(back.name, 'x');
    assert.equal(back.threads, 2);
  });
});

describe('launcher hardening (scripts and ssh arguments)', () => {
  it('ssh destinations come after -- and may not start with -', async () => {
    const { sshArgs } = await import('../../src/launch/ssh.js');
    const args = sshArgs({ dest: 'me@host', options: ['-p', '22'] });
    assert.deepEqual(args.slice(-3), ['--', 'me@host', 'sh -s']);
    assert.throws(() => sshArgs({ dest: '-oProxyCommand=touch /tmp/x' }), /may not be empty or start with "-"/);
  });

  it('the start script has no heredoc, quotes the token, and a token holding shell syntax stays one word', async () => {
    const { startScript, runScript } = await import('../../src/launch/launcher.js');
    const { loadHostsFile } = await import('../../src/launch/hosts.js');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { execFileSync } = await import('node:child_process');
    const dir = mkdtempSync(join(tmpdir(), 'sc-launch-'));
    const hosts = join(dir, 'hosts.yaml');
    writeFileSync(hosts, `project_dir: ${dir}\nlog_dir: "${dir}/$(touch ${dir}/pwned)"\nhosts:\n  - { name: a, ssh: me@a, role: server, address: 127.0.0.1 }\n  - { name: b, ssh: me@b, role: worker }\n`);
    const plan = loadHostsFile(hosts);
    const token = `x'$(touch ${dir}/pwned)\nSMOLCLUSTER_EOF_sc_server\n0123456789abcdef`;
    const script = startScript(plan, plan.processes[0], token);
    assert.doesNotMatch(script, /<</, 'no heredoc');
    // Run only the part that writes the token file, in a sandbox HOME: the file holds the token exactly.
    const writes = script.split('\n').filter((l, i, all) => i < all.findIndex((x) => x.startsWith('chmod')));
    execFileSync('sh', ['-c', writes.join('\n')], { env: { ...process.env, HOME: dir } });
    const { readdirSync, readFileSync, existsSync } = await import('node:fs');
    const runDir = join(dir, '.smolcluster', 'run');
    assert.equal(readFileSync(join(runDir, readdirSync(runDir)[0]), 'utf8'), `${token}\n`);
    assert.ok(!existsSync(join(dir, 'pwned')), 'nothing in the token was executed');
    assert.match(runScript(plan, plan.processes[0]), /exec >> '.*\$\(touch .*\)\/smolcluster-server\.log'/, 'log_dir stays quoted');
  });
});
