/**
 * The original coordinator recipe as written (issue 33 §4): compute_nodes.txt in the working
 * folder is read without --nodes, the expected nodes are said at start, and while none is live, why.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { expectedNodesLine, noNodeLine, nodesFileFor } from '../../src/cli/coordinator_nodes.js';

const dir = mkdtempSync(join(tmpdir(), 'coordinator-nodes-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('the coordinator\'s nodes', () => {
  it('reads compute_nodes.txt from the working folder when --nodes names none, and says which nodes it expects', () => {
    writeFileSync(join(dir, 'x.txt'), '');
    assert.deepEqual(nodesFileFor(undefined, dir), { file: undefined, found: false });
    assert.deepEqual(nodesFileFor('other.txt', dir), { file: 'other.txt', found: false });
    const file = join(dir, 'compute_nodes.txt');
    writeFileSync(file, '# the original format\n127.0.0.1,9091\nnode2,9092\n');
    assert.deepEqual(nodesFileFor(undefined, dir), { file: 'compute_nodes.txt', found: true });
    assert.equal(expectedNodesLine(file, true, 9095), 'expecting 2 compute nodes from compute_nodes.txt (found in the working folder): 127.0.0.1:9091, node2:9092');
    assert.match(noNodeLine(file, 9095, 10_000), /^no compute node has joined after 10 s: dialing 127\.0\.0\.1:9091, node2:9092 from .*compute_nodes\.txt without an answer/);
  });

  it('without a nodes file, says nodes must register, and how', () => {
    assert.equal(expectedNodesLine(undefined, false, 9095, '/w'), 'no compute_nodes.txt in /w and no --nodes: waiting for compute nodes to register (compute-node PORT --coordinator HOST:9095)');
    assert.match(noNodeLine(undefined, 9095, 5000), /after 5 s: none is listed .* start one with compute-node PORT --coordinator HOST:9095/);
  });
});
