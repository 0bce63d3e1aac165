import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { localRankFromEnvironment, rankFromEnvironment, resolvePlacement } from '../../src/launch/env.js';
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

  it('torchrun first, then Slurm, then OpenMPI; flags before all', () => {
    const env = { ...MASTER, RANK: '0', WORLD_SIZE: '2', SLURM_PROCID: '1', SLURM_NTASKS: '3', OMPI_COMM_WORLD_RANK: '2' };
    assert.equal(rankFromEnvironment(env), 0);
    assert.equal(rankFromEnvironment({ SLURM_PROCID: '1', OMPI_COMM_WORLD_RANK: '2' }), 1);
    assert.deepEqual(resolvePlacement({ rank: 1 }, env), { rank: 1, worldSize: 2, masterHost: '127.0.0.1', masterPort: 29500 });
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
});
