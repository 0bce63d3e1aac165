import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  SLURM_PORT_BASE, SLURM_PORT_SPAN, describePlacement, renameFlagSources, expandTasksPerNode, firstHostOf, localRankFromEnvironment, rankFromEnvironment,
  resolvePlacement, resolvePlacementWithSources, schedulerThreads,
} from '../../src/launch/env.js';
import { parseHardwarePorts, kindOfPort } from '../../src/launch/hardware_ports.js';
import { chooseInterface, classifyInterface, sameSubnet } from '../../src/launch/iface.js';
import { ConfigError } from '../../src/util/errors.js';

const MASTER = { MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29500' };

describe('placement from Slurm and OpenMPI', () => {
  it('Slurm: SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID', () => {
    const env = { ...MASTER, SLURM_PROCID: '3', SLURM_NTASKS: '4', SLURM_LOCALID: '1' };
    assert.deepEqual(resolvePlacement({}, env), { rank: 3, worldSize: 4, masterHost: '127.0.0.1', masterPort: 29500 });
    assert.equal(localRankFromEnvironment(env), 1);
  });

  it('OpenMPI: OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE / OMPI_COMM_WORLD_LOCAL_RANK', () => {
    const env = { ...MASTER, OMPI_COMM_WORLD_RANK: '1', OMPI_COMM_WORLD_SIZE: '2', OMPI_COMM_WORLD_LOCAL_RANK: '0' };
    assert.deepEqual(resolvePlacement({}, env), { rank: 1, worldSize: 2, masterHost: '127.0.0.1', masterPort: 29500 });
    assert.equal(localRankFromEnvironment(env), 0);
  });

  it('torchrun first, then Slurm, then OpenMPI when they agree; disagreeing launchers are refused naming both; flags before all', () => {
    const env = { ...MASTER, RANK: '0', WORLD_SIZE: '2', SLURM_PROCID: '1', SLURM_NTASKS: '3', OMPI_COMM_WORLD_RANK: '2' };
    assert.equal(rankFromEnvironment(env), 0);
    assert.throws(() => resolvePlacement({}, env), (e: unknown) => e instanceof ConfigError && /RANK=0 but SLURM_PROCID=1/.test(e.message) && e.path === 'RANK');
    assert.throws(() => resolvePlacement({ rank: 1 }, env), /WORLD_SIZE=2 but SLURM_NTASKS=3/);
    assert.deepEqual(resolvePlacement({ rank: 1, worldSize: 2 }, env), { rank: 1, worldSize: 2, masterHost: '127.0.0.1', masterPort: 29500 });
    const agreeing = { ...MASTER, RANK: '1', SLURM_PROCID: '1', WORLD_SIZE: '2', SLURM_NTASKS: '2' };
    const { placement, sources } = resolvePlacementWithSources({}, agreeing);
    assert.equal(describePlacement(placement, sources), 'rank 1 of 2 (RANK, WORLD_SIZE), master 127.0.0.1:29500 (MASTER_ADDR, MASTER_PORT)');
    // One source of both values is named once; a flag's value that came from a cluster file names the file.
    const flagged = { rank: '--rank', worldSize: '--world-size', masterHost: '--master', masterPort: '--master' };
    assert.equal(describePlacement(placement, flagged), 'rank 1 of 2 (--rank, --world-size), master 127.0.0.1:29500 (--master)');
    assert.equal(describePlacement(placement, renameFlagSources(flagged, { rank: 'server', master: 'cluster_config.yaml' })),
      'rank 1 of 2 (server, --world-size), master 127.0.0.1:29500 (cluster_config.yaml)');
    assert.deepEqual(renameFlagSources(sources, { rank: 'server', master: 'cluster_config.yaml' }), sources, 'only the flags\' own sources are renamed');
  });

  it('Slurm without MASTER_*: the first host of the node list, a port from the job id (two jobs differ)', () => {
    const job = (id: string, extra: Record<string, string> = {}) => resolvePlacementWithSources({}, { SLURM_PROCID: '0', SLURM_NTASKS: '2', SLURM_JOB_ID: id, SLURM_JOB_NODELIST: 'node[07-09,12],gpu1', ...extra });
    const a = job('123456');
    assert.deepEqual(a.placement, { rank: 0, worldSize: 2, masterHost: 'node07', masterPort: SLURM_PORT_BASE + (123456 % SLURM_PORT_SPAN) });
    assert.deepEqual(a.sources, { rank: 'SLURM_PROCID', worldSize: 'SLURM_NTASKS', masterHost: 'SLURM_JOB_NODELIST', masterPort: 'SLURM_JOB_ID' });
    assert.notEqual(job('123457').placement.masterPort, a.placement.masterPort);
    assert.equal(job('1', { SLURM_STEP_NODELIST: 'n3' }).placement.masterHost, 'n3', 'the step\'s list first');
    const launchOnly = resolvePlacement({}, { SLURM_PROCID: '0', SLURM_NTASKS: '1', SLURM_JOB_ID: '9', SLURM_LAUNCH_NODE_IPADDR: '10.1.2.3' });
    assert.equal(launchOnly.masterHost, '10.1.2.3');
    assert.equal(resolvePlacement({}, { SLURM_PROCID: '0', SLURM_NTASKS: '2', SLURM_JOB_ID: '9', SLURM_JOB_NODELIST: 'a', MASTER_PORT: '4000' }).masterPort, 4000);
  });

  it('host lists and tasks per node in Slurm\'s notation', () => {
    assert.equal(firstHostOf('node[07-09,12],gpu1'), 'node07');
    assert.equal(firstHostOf('a,b'), 'a');
    assert.equal(firstHostOf('rack1-n[003-004]'), 'rack1-n003');
    assert.equal(firstHostOf('localhost'), 'localhost');
    assert.deepEqual(expandTasksPerNode('2(x3),1'), [2, 2, 2, 1]);
    assert.equal(expandTasksPerNode('2(x'), undefined);
  });

  it('threads from the scheduler: SLURM_CPUS_PER_TASK, else the cores divided by this node\'s tasks', () => {
    assert.deepEqual(schedulerThreads(8, { SLURM_CPUS_PER_TASK: '3', SLURM_NTASKS_PER_NODE: '4' }), { threads: 3, source: 'SLURM_CPUS_PER_TASK' });
    assert.equal(schedulerThreads(8, { SLURM_NTASKS_PER_NODE: '4' })?.threads, 2);
    assert.equal(schedulerThreads(8, { SLURM_TASKS_PER_NODE: '4(x2),1', SLURM_NODEID: '2' })?.threads, 8);
    assert.equal(schedulerThreads(2, { SLURM_STEP_TASKS_PER_NODE: '2' })?.threads, 1);
    assert.equal(schedulerThreads(8, { OMPI_COMM_WORLD_LOCAL_SIZE: '3' })?.threads, 2);
    assert.equal(schedulerThreads(8, { LOCAL_WORLD_SIZE: '16' })?.threads, 1, 'at least one');
    assert.equal(schedulerThreads(8, {}), undefined);
  });

  it('a missing rank names every source; a bad value names its variable', () => {
    assert.throws(() => resolvePlacement({}, { ...MASTER, WORLD_SIZE: '2' }), (e: unknown) =>
      e instanceof ConfigError && /--rank/.test(e.message) && /SLURM_PROCID/.test(e.message) && /OMPI_COMM_WORLD_RANK/.test(e.message));
    assert.throws(() => resolvePlacement({}, { ...MASTER, SLURM_PROCID: 'x', SLURM_NTASKS: '2' }), (e: unknown) =>
      e instanceof ConfigError && e.path === 'SLURM_PROCID');
  });
});

const IFACES = {
  lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '', internal: true, cidr: '127.0.0.1/8' }],
  wlp2s0: [{ address: '10.10.0.5', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: '10.10.0.5/24' }],
  enp3s0: [{ address: '10.10.0.6', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: '10.10.0.6/24' }],
  eth1: [{ address: '192.168.50.2', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: '192.168.50.2/24' }],
} as unknown as NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]>;

describe('network interface choice', () => {
  it('classifies Thunderbolt, wired and Wi-Fi names on macOS and Linux', () => {
    assert.equal(classifyInterface('bridge0', 'darwin'), 'thunderbolt');
    assert.equal(classifyInterface('en1', 'darwin'), 'wired');
    assert.equal(classifyInterface('thunderbolt0', 'linux'), 'thunderbolt');
    assert.equal(classifyInterface('eth0', 'linux'), 'wired');
    assert.equal(classifyInterface('enp3s0', 'linux'), 'wired');
    assert.equal(classifyInterface('wlan0', 'linux'), 'wifi');
    assert.equal(classifyInterface('wlp2s0', 'linux'), 'wifi');
    assert.equal(classifyInterface('veth1', 'linux'), 'other');
  });

  it('auto: among interfaces on the master\'s subnet, wired before Wi-Fi; loopback masters keep the defaults', () => {
    const choose = (masterHost: string): string | undefined => chooseInterface({ masterHost, interfaces: IFACES, platform: 'linux', env: {} })?.name;
    assert.equal(choose('10.10.0.1'), 'enp3s0');
    assert.equal(choose('192.168.50.1'), 'eth1');
    assert.equal(choose('172.16.0.1'), undefined, 'no interface on that subnet: the route decides');
    assert.equal(choose('127.0.0.1'), undefined);
    assert.ok(sameSubnet('10.10.0.5', '10.10.0.200', '255.255.255.0'));
    assert.ok(!sameSubnet('10.10.1.5', '10.10.0.200', '255.255.255.0'));
  });

  it('--iface or SMOLCLUSTER_IFNAME name it (or give an address); an unknown name lists the real ones', () => {
    assert.equal(chooseInterface({ requested: 'wlp2s0', masterHost: '10.10.0.1', interfaces: IFACES, env: {} })?.address, '10.10.0.5');
    assert.equal(chooseInterface({ masterHost: '10.10.0.1', interfaces: IFACES, env: { SMOLCLUSTER_IFNAME: 'eth1' } })?.address, '192.168.50.2');
    assert.equal(chooseInterface({ requested: '10.1.2.3', masterHost: '127.0.0.1', interfaces: IFACES, env: {} })?.address, '10.1.2.3');
    assert.throws(() => chooseInterface({ requested: 'tb9', masterHost: '10.10.0.1', interfaces: IFACES, env: {} }),
      (e: unknown) => e instanceof ConfigError && /no interface "tb9"/.test(e.message) && /enp3s0/.test(e.message) && e.path === '--iface');
  });

  it('GLOO_SOCKET_IFNAME and NCCL_SOCKET_IFNAME are honoured like SMOLCLUSTER_IFNAME (lists, =exact, prefixes; ^exclusions stay automatic)', () => {
    const pick = (env: NodeJS.ProcessEnv): string | undefined => chooseInterface({ masterHost: '10.10.0.1', interfaces: IFACES, platform: 'linux', env })?.name;
    assert.equal(pick({ GLOO_SOCKET_IFNAME: 'eth1' }), 'eth1');
    assert.equal(pick({ GLOO_SOCKET_IFNAME: 'ib0,eth1' }), 'eth1', 'the first this host has');
    assert.equal(pick({ NCCL_SOCKET_IFNAME: 'wlp' }), 'wlp2s0', 'NCCL prefix');
    assert.throws(() => pick({ NCCL_SOCKET_IFNAME: '=wlp' }), (e: unknown) => e instanceof ConfigError && e.path === 'NCCL_SOCKET_IFNAME');
    assert.equal(pick({ NCCL_SOCKET_IFNAME: '^docker,lo' }), 'enp3s0', 'an exclusion list leaves the automatic choice');
    assert.equal(pick({ SMOLCLUSTER_IFNAME: 'eth1', GLOO_SOCKET_IFNAME: 'wlp2s0' }), 'eth1', 'ours first');
    assert.throws(() => pick({ GLOO_SOCKET_IFNAME: 'tb9' }), (e: unknown) => e instanceof ConfigError && e.path === 'GLOO_SOCKET_IFNAME' && /enp3s0/.test(e.message));
  });
});

// Captured from a MacBook (en0 is Wi-Fi) and a Mac mini (en0 is Ethernet).
const MACBOOK_PORTS = `
Hardware Port: Wi-Fi
Device: en0
Ethernet Address: a4:83:e7:00:00:01

Hardware Port: Thunderbolt Bridge
Device: bridge0
Ethernet Address: 82:0a:aa:00:00:02

Hardware Port: Thunderbolt 1
Device: en1
Ethernet Address: 82:0a:aa:00:00:03

Hardware Port: USB 10/100/1000 LAN
Device: en7
Ethernet Address: 00:e0:4c:00:00:04

VLAN Configurations
===================
`;
const MACMINI_PORTS = `
Hardware Port: Ethernet
Device: en0
Ethernet Address: 1c:1d:d3:00:00:05

Hardware Port: Wi-Fi
Device: en1
Ethernet Address: 1c:1d:d3:00:00:06
`;

describe('macOS hardware ports (networksetup -listallhardwareports)', () => {
  it('parses device → port and classifies by the port, not the name', () => {
    const book = parseHardwarePorts(MACBOOK_PORTS);
    assert.deepEqual([...book], [['en0', 'Wi-Fi'], ['bridge0', 'Thunderbolt Bridge'], ['en1', 'Thunderbolt 1'], ['en7', 'USB 10/100/1000 LAN']]);
    assert.equal(classifyInterface('en0', 'darwin', book), 'wifi');
    assert.equal(classifyInterface('en1', 'darwin', book), 'thunderbolt');
    assert.equal(classifyInterface('bridge0', 'darwin', book), 'thunderbolt');
    assert.equal(classifyInterface('en7', 'darwin', book), 'wired');
    const mini = parseHardwarePorts(MACMINI_PORTS);
    assert.equal(classifyInterface('en0', 'darwin', mini), 'wired');
    assert.equal(classifyInterface('en1', 'darwin', mini), 'wifi');
    assert.equal(kindOfPort('AirPort'), 'wifi');
    assert.equal(classifyInterface('utun3', 'darwin', mini), 'other', 'not a hardware port: by name');
  });
});

