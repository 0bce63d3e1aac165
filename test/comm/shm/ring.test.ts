import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { shmNative } from '../../../src/launch/shm_native.js';
import { HEADER_BYTES, Inbox, inboxBytes, pad16 } from '../../../src/comm/shm/ring.js';

const native = shmNative();
const skip = native || process.env.CI === 'true' ? false : 'the native addon has no shared memory here (not Linux, or not built)';
const uniqueName = (): string => `/smolcluster-test-${process.pid}-${randomBytes(4).toString('hex')}`;

/** A segment mapped twice (as a second process would see it), unlinked at once. */
function twoViews(size: number, capacity: number): [Inbox, Inbox] {
  const name = uniqueName();
  const a = new Inbox(native!.shmCreate(name, inboxBytes(size, capacity)), size, capacity);
  const b = new Inbox(native!.shmOpen(name, inboxBytes(size, capacity)), size, capacity);
  native!.shmUnlink(name);
  return [a, b];
}

test('segments: create, open from a second mapping, refuse a taken or missing name, unlink', { skip }, () => {
  const name = uniqueName();
  const a = native!.shmCreate(name, 4096);
  assert.throws(() => native!.shmCreate(name, 4096), /shm_open .*exists/);
  const b = native!.shmOpen(name, 4096);
  new Uint8Array(a)[100] = 42;
  assert.equal(new Uint8Array(b)[100], 42, 'both mappings are the same memory');
  assert.throws(() => native!.shmOpen(name, 8192), /smaller than 8192 bytes/);
  assert.equal(native!.shmUnlink(name), true);
  assert.equal(native!.shmUnlink(name), false);
  assert.throws(() => native!.shmOpen(name, 4096), /No such file/);
  assert.throws(() => native!.shmCreate('no-slash', 4096), TypeError);
});

test('a message longer than the ring streams through it intact, with wrap-around and padding', { skip }, () => {
  const [writerSide, readerSide] = twoViews(2, 256);
  const out = writerSide.ringFrom(0);
  const inn = readerSide.ringFrom(0);
  for (const length of [0, 1, 15, 16, 17, 100, 1000, 4093]) {
    const src = new Uint8Array(randomBytes(length));
    const dst = new Uint8Array(length);
    out.writeHeader(7, 0xdeadbeef, length);
    assert.equal(inn.readable(), HEADER_BYTES);
    const h = inn.peekHeader();
    assert.deepEqual([...h.subarray(1)], [7, 0xdeadbeef, length]);
    inn.skipHeader();
    const total = pad16(length);
    let written = 0;
    let read = 0;
    while (read < total) {
      const w = Math.min(total - written, out.writable(), 100);
      out.writePiece(src, written, w);
      written += w;
      assert.ok(inn.readable() <= 256);
      const r = Math.min(total - read, inn.readable(), 70);
      inn.readPiece(dst, read, r);
      read += r;
    }
    assert.deepEqual(dst, src, `length ${length}`);
    assert.equal(inn.readable(), 0);
    assert.equal(out.writable(), 256);
  }
});

test('the doorbell: a wait times out with false, and a wake from the other mapping ends it with true', { skip }, async () => {
  const [a, b] = twoViews(1, 64);
  const t0 = Date.now();
  assert.equal(await native!.futexWait(a.flags, 0, a.bell(), 50), false);
  assert.ok(Date.now() - t0 >= 40, 'waited for the timeout');
  const bell = a.bell();
  const woken = native!.futexWait(a.flags, 0, bell, 10_000);
  setTimeout(() => {
    b.ring();
    native!.futexWake(b.flags, 0);
  }, 20);
  const t1 = Date.now();
  assert.equal(await woken, true);
  assert.ok(Date.now() - t1 < 5000, 'woken, not timed out');
  // A bell that already moved returns at once.
  assert.equal(await native!.futexWait(a.flags, 0, bell, 10_000), true);
  assert.throws(() => void native!.futexWait(new Int32Array(2), 5, 0, 10), RangeError);
});

test('spinWait: true at once when the word moved, false after its budget when it did not, never past the range', { skip }, () => {
  const [a] = twoViews(1, 64);
  const bell = a.bell();
  a.ring();
  assert.equal(native!.spinWait(a.flags, 0, bell, 10_000), true);
  const t0 = performance.now();
  assert.equal(native!.spinWait(a.flags, 0, a.bell(), 2000), false);
  assert.ok(performance.now() - t0 >= 1.9, 'spun for its budget');
  assert.throws(() => native!.spinWait(a.flags, 0, 0, 20_000), RangeError);
  assert.throws(() => native!.spinWait(a.flags, 99, 0, 10), RangeError);
});
