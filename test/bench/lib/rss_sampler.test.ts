import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { RssSampler, vmHwmBytes } from '../../../bench/lib/rss_sampler.js';

const MiB = 2 ** 20;
/** A process that touches 96 MiB, says so, and waits to be killed. */
const HOG = "const b=Buffer.alloc(96*1024*1024,1);console.log('up '+b[7]);setInterval(()=>{},1000)";

describe('RssSampler: peak RSS read where it happens (VmHWM)', { timeout: 30_000 }, () => {
  it('sees a rank process and a launcher\'s child, not the launcher, at their high-water mark', async () => {
    const rank = spawn(process.execPath, ['-e', HOG], { stdio: ['ignore', 'pipe', 'ignore'] });
    const launcher = spawn('sh', ['-c', `"${process.execPath}" -e "${HOG}"; :`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let grandchild = 0;
    try {
      await Promise.all([once(rank.stdout!, 'data'), once(launcher.stdout!, 'data')]);
      grandchild = Number(readFileSync(`/proc/${launcher.pid}/task/${launcher.pid}/children`, 'utf8').trim());
      const ranks = new RssSampler([rank.pid!], true, 20);
      const children = new RssSampler([launcher.pid!], false, 20);
      await new Promise((r) => setTimeout(r, 100));
      const [own] = ranks.stop();
      const kids = children.stop();
      assert.ok(own >= 96 * MiB, `rank peak ${own}`);
      assert.equal(kids.length, 1, 'only the launcher\'s child');
      assert.ok(kids[0] >= 96 * MiB, `child peak ${kids[0]}`);
      assert.ok((vmHwmBytes(launcher.pid!) ?? 0) < 32 * MiB, 'the shell itself is small');
      // Asked for one program, a sampler skips the others (a worker's `lspci` probe is not a rank).
      const nodes = new RssSampler([launcher.pid!], true, 20, 'node');
      const shells = new RssSampler([launcher.pid!], true, 20, 'sh');
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(nodes.stop().map((b) => b >= 96 * MiB), [true], 'the node child only');
      assert.deepEqual(shells.stop().map((b) => b < 32 * MiB), [true], 'the shell only');
    } finally {
      rank.kill('SIGKILL');
      if (grandchild > 0) process.kill(grandchild, 'SIGKILL');
      launcher.kill('SIGKILL');
    }
  });
});
