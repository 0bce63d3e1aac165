import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseNodesFile } from '../../src/cluster/nodes_file.js';

test('compute_nodes.txt: host,port per line; blanks and # comments skipped', () => {
  assert.deepEqual(parseNodesFile('# nodes\n127.0.0.1,9091\n\n localhost , 9092 \r\n', 'n.txt'), [
    { host: '127.0.0.1', port: 9091 },
    { host: 'localhost', port: 9092 },
  ]);
});

test('a malformed line is an error naming the file and the line', () => {
  assert.throws(() => parseNodesFile('127.0.0.1,9091\n127.0.0.1 9092\n', 'n.txt'), /n\.txt \(line 2\): expected "host,port", got "127\.0\.0\.1 9092"/);
  assert.throws(() => parseNodesFile('127.0.0.1,70000', 'n.txt'), /n\.txt \(line 1\): port "70000" is not a port number/);
  assert.throws(() => parseNodesFile('a,b,c', 'n.txt'), /line 1/);
  assert.throws(() => parseNodesFile('bad host!,1', 'n.txt'), /line 1\): "bad host!" is not a host name/);
});
