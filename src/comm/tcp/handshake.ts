/**
 * Connection handshake: both sides prove they hold the cluster token and agree on what they are
 * running, before a single data byte is accepted.
 *
 *   dialer                          acceptor
 *   HELLO {version, purpose, world, rank, signature, nonce}  <-->  HELLO {...}
 *   (each checks the other's HELLO; on mismatch: ERROR "why", close)
 *   AUTH HMAC(token, "dialer" | both HELLOs)  -->
 *                                  (verifies; wrong token: ERROR, close)
 *                                  <--  AUTH HMAC(token, "acceptor" | both HELLOs)
 *   (verifies; wrong token: ERROR, close)
 *                                  <--  READY {rank}  (or ERROR: e.g. duplicate rank)
 *
 * The dialer proves its key first, so a client without the token never sees a MAC it could attack
 * offline. Until a side has verified the other's AUTH, its connection takes only handshake frames of
 * control size (connection.ts), and an acceptor keeps only `maxPending` handshakes open at a time
 * (PendingHandshakes below: the oldest is dropped), so unauthenticated sockets cannot pin memory.
 *
 * Both HELLOs (with fresh nonces) are under the MAC, so a proof cannot be replayed or reflected and
 * the checked fields cannot be altered in transit. Every refusal is reported on both sides: the
 * refusing side throws, the refused side gets the ERROR frame and throws with its text.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { PeerError, ProtocolError, TimeoutError } from '../../util/errors.js';
import { decodeHello, decodeReady, decodeRefusal, encodeJson, type Hello, type Purpose, type Refusal } from '../wire/control.js';
import { MessageType } from '../wire/frame.js';
import type { Connection } from './connection.js';
import { commLog } from '../log.js';
import { settingsDifference, splitSignature } from './signature_settings.js';

/**
 * A peer turned away for what it is (another token, protocol, world size or signature), as opposed
 * to a connection that failed: a rank waiting for that peer will wait in vain.
 */
export class RefusalError extends PeerError {
  constructor(rank: number, host: string, readonly refusal: Refusal) {
    super(rank, host, refusal.message);
  }
}

/** Refusals that no retry of the same peer can get past: its settings differ from ours. */
const MISMATCHES: ReadonlySet<string> = new Set(['AUTH', 'VERSION', 'WORLD_SIZE', 'SIGNATURE', 'PURPOSE']);

export function isMismatch(err: unknown): err is RefusalError {
  return err instanceof RefusalError && MISMATCHES.has(err.refusal.code);
}

export interface HandshakeConfig {
  token: string;
  worldSize: number;
  signature: string;
  purpose: Purpose;
  /** Our rank; -1 for the store server, or for a store client that asks to be assigned one. */
  rank: number;
  timeoutMs: number;
}

export interface HandshakeResult {
  peer: Hello;
  /** The dialer's rank as confirmed (or assigned) by the acceptor. */
  rank: number;
}

/** The acceptor's decision on a verified peer: its rank, or a refusal. */
export type Admit = (peer: Hello, conn: Connection) => number | Refusal;

export function dialHandshake(conn: Connection, cfg: HandshakeConfig): Promise<HandshakeResult> {
  return withDeadline(conn, cfg, async () => {
    const peer = await exchange(conn, cfg, 'dialer');
    const f = await expectFrame(conn, MessageType.Ready);
    return { peer, rank: decodeReady(f.payload).rank };
  });
}

/**
 * An acceptor's open handshakes, at most `max` at a time: a new socket beyond that drops the
 * oldest (an idle or slow unauthenticated socket), so a flood cannot hold the door shut for
 * long and real peers — whose handshake takes milliseconds — get through between.
 */
export class PendingHandshakes {
  private readonly open = new Set<Connection>();

  constructor(readonly max = 64) {}

  get size(): number {
    return this.open.size;
  }

  add(conn: Connection): void {
    if (this.open.size >= this.max) {
      const oldest = this.open.values().next().value as Connection;
      this.open.delete(oldest);
      commLog('debug', `dropping ${oldest.remote}: more than ${this.max} handshakes pending`);
      oldest.destroy(new ProtocolError(`handshake dropped: more than ${this.max} pending`));
    }
    this.open.add(conn);
    conn.once('closed', () => this.open.delete(conn));
  }

  delete(conn: Connection): void {
    this.open.delete(conn);
  }
}

export function acceptHandshake(conn: Connection, cfg: HandshakeConfig, admit: Admit, pending?: PendingHandshakes): Promise<HandshakeResult> {
  if (pending) pending.add(conn);
  const result = acceptWithin(conn, cfg, admit);
  if (pending) void result.then(() => pending.delete(conn), () => pending.delete(conn));
  return result;
}

function acceptWithin(conn: Connection, cfg: HandshakeConfig, admit: Admit): Promise<HandshakeResult> {
  return withDeadline(conn, cfg, async () => {
    const peer = await exchange(conn, cfg, 'acceptor');
    const decision = admit(peer, conn);
    if (typeof decision !== 'number') {
      conn.refuse(cfg.rank, decision.code, decision.message);
      throw new PeerError(peer.rank, conn.remote, `refused: ${decision.message}`);
    }
    conn.peerRank = decision;
    await conn.sendJson(MessageType.Ready, cfg.rank, { rank: decision });
    return { peer, rank: decision };
  });
}

async function exchange(conn: Connection, cfg: HandshakeConfig, role: 'dialer' | 'acceptor'): Promise<Hello> {
  const mine: Hello = {
    protocol: conn.version,
    purpose: cfg.purpose,
    worldSize: cfg.worldSize,
    rank: cfg.rank,
    signature: cfg.signature,
    nonce: randomBytes(16).toString('hex'),
  };
  const mineBytes = encodeJson(mine);
  conn.send(MessageType.Hello, cfg.rank, 0, 0, mineBytes).catch(() => {});
  const f = await expectFrame(conn, MessageType.Hello);
  const peer = decodeHello(f.payload);
  if (peer.rank >= 0) conn.peerRank = peer.rank;
  const mismatch = compareHellos(mine, peer, role);
  if (mismatch) {
    conn.refuse(cfg.rank, mismatch.code, mismatch.message);
    throw new RefusalError(peer.rank, conn.remote, mismatch);
  }
  const transcript = role === 'dialer' ? [mineBytes, f.payload] : [f.payload, mineBytes];
  const sendProof = (): void => void conn.send(MessageType.Auth, cfg.rank, 0, 0, proof(cfg.token, role, transcript)).catch(() => {});
  if (role === 'dialer') sendProof();
  const auth = await expectFrame(conn, MessageType.Auth);
  const expected = proof(cfg.token, other(role), transcript);
  if (auth.payload.length !== expected.length || !timingSafeEqual(auth.payload, expected)) {
    const message = `authentication failed: ${bothNamed(name(mine, role), name(peer, other(role)))} have different cluster tokens (check SMOLCLUSTER_TOKEN)`;
    conn.refuse(cfg.rank, 'AUTH', message);
    throw new RefusalError(peer.rank, conn.remote, { code: 'AUTH', message });
  }
  conn.markAuthenticated();
  if (role === 'acceptor') sendProof();
  return peer;
}

/** The first disagreement between two HELLOs, worded the same for both sides. */
function compareHellos(mine: Hello, peer: Hello, role: 'dialer' | 'acceptor'): Refusal | null {
  const a = name(mine, role);
  const b = name(peer, other(role));
  if (peer.protocol !== mine.protocol) return { code: 'VERSION', message: `protocol version mismatch: ${a} speaks v${mine.protocol}, ${b} speaks v${peer.protocol}` };
  if (peer.purpose !== mine.purpose) return { code: 'PURPOSE', message: `wrong endpoint: ${b} opened a ${peer.purpose} connection to a ${mine.purpose} endpoint` };
  if (peer.worldSize !== mine.worldSize) return { code: 'WORLD_SIZE', message: `world size mismatch: ${a} has ${mine.worldSize}, ${b} has ${peer.worldSize}` };
  if (peer.signature !== mine.signature) {
    // The settings that differ, by flag with both values, when both sides sent them.
    // The acceptor's values first, so both sides print the same line.
    const settings = role === 'acceptor' ? settingsDifference(mine.signature, peer.signature, a, b) : settingsDifference(peer.signature, mine.signature, b, a);
    if (settings) return { code: 'SIGNATURE', message: `model signature mismatch: ${settings}` };
    return { code: 'SIGNATURE', message: `model signature mismatch: ${a} has "${short(splitSignature(mine.signature).text)}", ${b} has "${short(splitSignature(peer.signature).text)}"` };
  }
  return null;
}

function proof(token: string, role: string, transcript: Uint8Array[]): Buffer {
  const mac = createHmac('sha256', token);
  mac.update(`smolcluster-auth-v1\0${role}\0`);
  mac.update(transcript[0]);
  mac.update('\0');
  mac.update(transcript[1]);
  return mac.digest();
}

async function expectFrame(conn: Connection, type: MessageType): Promise<{ payload: Uint8Array }> {
  const f = await conn.nextControl();
  if (f.h.type === MessageType.Error) {
    const r = decodeRefusal(f.payload);
    throw new PeerError(conn.peerRank, conn.remote, `refused the connection: ${r.message}`);
  }
  if (f.h.type !== type) throw new ProtocolError(`handshake: expected ${MessageType[type]}, got ${MessageType[f.h.type]} from ${conn.remote}`);
  return f;
}

async function withDeadline(conn: Connection, cfg: HandshakeConfig, body: () => Promise<HandshakeResult>): Promise<HandshakeResult> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new TimeoutError('handshake', conn.peerRank >= 0 ? [conn.peerRank] : [], cfg.timeoutMs, `with ${conn.remote}`);
      conn.destroy(err);
      reject(err);
    }, cfg.timeoutMs);
  });
  try {
    return await Promise.race([body(), deadline]);
  } catch (err) {
    if (!conn.isLeaving) conn.destroy(err as Error);
    if (err instanceof ProtocolError) throw new PeerError(conn.peerRank, conn.remote, err.message, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Logs a failed incoming handshake, once: protocol errors were already logged by the connection. */
export function logRefused(what: string, err: Error): void {
  if (err.cause instanceof ProtocolError) return;
  commLog('warn', `${what}: ${err.message}`);
}

function name(h: Hello, role: 'dialer' | 'acceptor'): string {
  if (h.rank >= 0) return `rank ${h.rank}`;
  return h.purpose === 'store' && role === 'acceptor' ? 'the store' : 'an unranked worker';
}

/** "rank 0 and rank 2", or where both sides have the same name (two unranked workers) "this unranked worker and its peer". */
function bothNamed(us: string, them: string): string {
  return us === them ? `this ${us.replace(/^an? /, '')} and its peer` : `${us} and ${them}`;
}

function other(role: 'dialer' | 'acceptor'): 'dialer' | 'acceptor' {
  return role === 'dialer' ? 'acceptor' : 'dialer';
}

function short(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
