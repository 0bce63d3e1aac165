/**
 * Upgrades a built TCP mesh to shared memory between ranks on the same host. Over the (authenticated)
 * TCP links every rank tells every other its boot id, host name, network namespace and the name of
 * the inbox segment it created; a peer with the same three maps that segment and says whether it
 * could. (Ranks in different network namespaces of one machine stay on TCP: bench:links shapes the
 * links between namespaces, and shared memory would bypass them.)
 * A pair uses shared memory only when both sides mapped each other's inbox; everyone else stays on
 * TCP (other hosts, no addon, a /dev/shm that is not shared, SMOLCLUSTER_SHM=0). Every rank takes
 * part even when it cannot share, so the exchange never waits for a silent rank.
 *
 * Segments are unlinked as soon as the exchange is over (the mappings stay): nothing is left in
 * /dev/shm when a process exits or crashes later. A crash during the exchange itself can leave one
 * segment behind; its name carries the pid namespace and pid, and the next process on this host to
 * negotiate removes it (sweep.ts).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { P2P_SEQ_BASE } from '../collectives/sendrecv.js';
import { commLog } from '../log.js';
import type { TcpTransport } from '../tcp/transport.js';
import type { Transport } from '../transport.js';
import type { ShmNative } from './native.js';
import { Inbox, inboxBytes } from './ring.js';
import { ownNamespace } from './namespace.js';
import { segmentName, sweepStaleSegments } from './sweep.js';
import { ShmTransport } from './transport.js';

export const SHM_ENV = 'SMOLCLUSTER_SHM';
/** Bytes of one ring (one per sender in every inbox): large enough that a 1 MiB piece rarely waits. */
export const DEFAULT_RING_BYTES = 4 << 20;
/** Tags above every collective's (their sequence numbers stay below P2P_SEQ_BASE - 1 here: this runs before any). */
const HELLO_TAG = (P2P_SEQ_BASE - 1) * 0x1_0000_0000;
const OPENED_TAG = HELLO_TAG + 1;

interface Hello {
  boot: string;
  host: string;
  netns: string;
  /** Our inbox segment, '' when we offer no shared memory. */
  name: string;
  ring: number;
}

export interface ShareOptions {
  timeoutMs: number;
  /** The addon's shared-memory half (null: none here, stay on TCP). */
  native: ShmNative | null;
  ringBytes?: number;
}

export function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/** The transport to build the group on: `tcp` itself, or a ShmTransport over it when some peer shares our host. */
export async function shareMemory(tcp: TcpTransport, opts: ShareOptions): Promise<Transport> {
  const native = process.env[SHM_ENV] === '0' ? null : opts.native;
  const ring = opts.ringBytes ?? DEFAULT_RING_BYTES;
  const { rank, size } = tcp;
  const name = segmentName(randomBytes(6).toString('hex'));
  let own: Inbox | null = null;
  if (native) {
    sweepStaleSegments((n) => native.shmUnlink(n));
    try {
      own = new Inbox(native.shmCreate(name, inboxBytes(size, ring)), size, ring);
    } catch (err) {
      commLog('warn', `rank ${rank}: no shared memory (${(err as Error).message}); staying on TCP`);
    }
  }
  try {
    const mine: Hello = { boot: bootId(), host: os.hostname(), netns: ownNamespace('net'), name: own ? name : '', ring };
    const hellos = await exchange(tcp, HELLO_TAG, () => mine, opts.timeoutMs);
    const mapped: Array<Inbox | null> = hellos.map((h, p) => (p === rank || !own || !native ? null : openPeer(native, h as Hello, mine, size)));
    const opened = await exchange(tcp, OPENED_TAG, (p) => mapped[p] !== null, opts.timeoutMs);
    const peers = mapped.map((inbox, p) => (inbox && opened[p] === true ? inbox : null));
    if (!own || !native || peers.every((p) => p === null)) return tcp;
    const shared = peers.flatMap((p, r) => (p ? [r] : []));
    commLog('debug', `rank ${rank}: data to rank${shared.length > 1 ? 's' : ''} ${shared.join(', ')} through shared memory, the rest over TCP`);
    return new ShmTransport(tcp, native, own, peers, opts.timeoutMs);
  } finally {
    if (own) native!.shmUnlink(name);
  }
}

function openPeer(native: ShmNative, h: Hello, mine: Hello, size: number): Inbox | null {
  const valid = typeof h === 'object' && h !== null && typeof h.name === 'string' && /^\/smolcluster-[0-9a-f-]+$/.test(h.name);
  if (!valid || !mine.boot || h.boot !== mine.boot || h.host !== mine.host || h.netns !== mine.netns || h.ring !== mine.ring) return null;
  try {
    return new Inbox(native.shmOpen(h.name, inboxBytes(size, h.ring)), size, h.ring);
  } catch (err) {
    commLog('warn', `could not map ${h.name} (${(err as Error).message}); that peer stays on TCP`);
    return null;
  }
}

/** Sends each peer the JSON of value(peer) and returns what each peer sent us (by rank). */
async function exchange(tcp: TcpTransport, tag: number, value: (peer: number) => unknown, timeoutMs: number): Promise<unknown[]> {
  const peers = Array.from({ length: tcp.size }, (_, p) => p).filter((p) => p !== tcp.rank);
  const got = peers.map((p) => tcp.recv(p, tag, { timeoutMs, op: 'shared-memory setup' }));
  await Promise.all(peers.map((p) => tcp.send(p, tag, Buffer.from(JSON.stringify(value(p))), { timeoutMs, op: 'shared-memory setup' })));
  const out: unknown[] = [];
  const replies = await Promise.all(got);
  peers.forEach((p, i) => (out[p] = JSON.parse(Buffer.from(replies[i]).toString('utf8')) as unknown));
  return out;
}
