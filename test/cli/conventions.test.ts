import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { backendFlag, tensorBackend } from '../../src/cli/train_flags.js';
import { masterAnnouncement } from '../../src/launch/worker_cluster.js';

describe('the guide\'s conventions', () => {
  it('--backend: native/js pick the tensor backend; gloo is accepted and picks none; nccl and mpi are refused with the reason', () => {
    assert.equal(tensorBackend(backendFlag('native')), 'native');
    assert.equal(tensorBackend(backendFlag('js')), 'js');
    assert.equal(tensorBackend(backendFlag('gloo')), undefined);
    assert.throws(() => backendFlag('nccl'), (e: unknown) => e instanceof InvalidArgumentError && /NVIDIA GPUs/.test(e.message) && /--backend gloo/.test(e.message));
    assert.throws(() => backendFlag('mpi'), /mpirun only to start the processes/);
    assert.throws(() => backendFlag('cuda'), /expected native or js/);
  });

  it('rank 0 names the address workers should use, every address of this host when it binds a wildcard', () => {
    const ifaces = {
      lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '', internal: true, cidr: '127.0.0.1/8' }],
      eth0: [{ address: '10.0.0.5', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: '10.0.0.5/24' }],
    } as unknown as NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]>;
    assert.equal(masterAnnouncement('10.0.0.5', 29500, 3, ifaces),
      'rank 0: rendezvous on 10.0.0.5:29500; workers use --master 10.0.0.5:29500 (or MASTER_ADDR=10.0.0.5 MASTER_PORT=29500); waiting for 2 workers');
    assert.match(masterAnnouncement('0.0.0.0', 7000, 2, ifaces), /workers use --master 10\.0\.0\.5:7000 .*waiting for 1 worker$/);
    // cluster_config worker_connect_ip: what the workers were told to dial, not this host's interfaces
    assert.match(masterAnnouncement('0.0.0.0', 65432, 3, ifaces, '127.0.0.1'), /rendezvous on 0\.0\.0\.0:65432; workers use --master 127\.0\.0\.1:65432 \(or MASTER_ADDR=127\.0\.0\.1 /);
  });
});
