/**
 * Connections between the GRPO trainer and its rollout workers: the comm layer's frames and HMAC
 * handshake over the cluster token (handshake.ts), with a deadline on every dial and handshake.
 * Workers dial the trainer (one listening port, so a worker on another host needs only the
 * trainer's address; a dialed socket also reads large weight frames straight into their buffers).
 * The handshake's signature carries the model's shape and the LoRA settings, so a worker started
 * with another --model or LoRA shape is refused at connect, naming the setting that differs.
 */
import type net from 'node:net';
import { Connection } from '../../comm/tcp/connection.js';
import { acceptHandshake, dialHandshake, type HandshakeConfig, type PendingHandshakes } from '../../comm/tcp/handshake.js';
import { dialWithRetry } from '../../comm/tcp/net.js';
import { signatureWithSettings } from '../../comm/tcp/signature_settings.js';
import { MessageType, type FrameHeader } from '../../comm/wire/frame.js';
import type { RolloutMessage } from './wire.js';

export const ROLLOUT_PROTOCOL = 'smolcluster-rollouts-v1';

/** What trainer and workers must agree on: the arena's layout (names and shapes of what trains) and the sampling-relevant settings. */
export function rolloutSignature(layout: string, settings: Readonly<Record<string, string>>): string {
  return signatureWithSettings(`${ROLLOUT_PROTOCOL} ${layout}`, settings);
}

function handshake(token: string, signature: string, timeoutMs: number): HandshakeConfig {
  return { token, worldSize: 0, signature, purpose: 'cluster', rank: -1, timeoutMs };
}

/** Dials the trainer (retrying while it is not up, for `dialMs`) and authenticates. */
export async function dialTrainer(host: string, port: number, token: string, signature: string, dialMs: number): Promise<Connection> {
  const conn = await dialWithRetry({ host, port, rank: -1, what: 'the GRPO trainer' }, dialMs);
  await dialHandshake(conn, handshake(token, signature, dialMs));
  return conn;
}

let nextWorkerId = 0;

/** Authenticates an accepted socket; rejects (the connection closed, the refusal logged on both sides) on any failure. */
export async function acceptWorker(socket: net.Socket, token: string, signature: string, timeoutMs: number, pending: PendingHandshakes): Promise<Connection> {
  const conn = Connection.accept(socket);
  await acceptHandshake(conn, handshake(token, signature, timeoutMs), () => nextWorkerId++ % 0x7fffffff, pending);
  return conn;
}

/**
 * Hands each DATA frame to `handler` as (message, payload); any other frame type, or a handler that
 * throws (a malformed message), drops this connection with the reason — never the process.
 */
export function onMessages(conn: Connection, handler: (message: RolloutMessage, payload: Uint8Array) => void, refused: (err: Error) => void): void {
  conn.setSink({
    target: (h: FrameHeader) => new Uint8Array(h.length),
    frame: (h: FrameHeader, payload: Uint8Array) => {
      if (h.type === MessageType.Bye) return;
      try {
        if (h.type !== MessageType.Data) throw new Error(`unexpected ${MessageType[h.type] ?? h.type} frame`);
        handler(h.tag as RolloutMessage, payload);
      } catch (err) {
        refused(err as Error);
        conn.destroy(err as Error);
      }
    },
  });
}

/** Sends one message; resolves when the bytes are handed to the OS. */
export function sendMessage(conn: Connection, message: RolloutMessage, payload: Uint8Array): Promise<void> {
  return conn.send(MessageType.Data, -1, 0, message, payload);
}
