/**
 * Connections between coordinator, compute nodes and clients: the comm layer's frames and HMAC
 * handshake (purpose "cluster"), with a deadline on every dial and handshake. After the handshake
 * each side installs a handler for whole frames; a handler that throws (a malformed message) drops
 * that one connection, never the process.
 */
import type net from 'node:net';
import { Connection } from '../comm/tcp/connection.js';
import { acceptHandshake, dialHandshake, type HandshakeConfig, type PendingHandshakes } from '../comm/tcp/handshake.js';
import { dialWithRetry } from '../comm/tcp/net.js';
import type { FrameHeader, MessageType } from '../comm/wire/frame.js';

/** Peers of a cluster job must agree on this (it is in both HELLOs). */
export const CLUSTER_SIGNATURE = 'smolcluster-jobs-v1';

export function clusterHandshake(token: string, timeoutMs: number): HandshakeConfig {
  return { token, worldSize: 0, signature: CLUSTER_SIGNATURE, purpose: 'cluster', rank: -1, timeoutMs };
}

export type FrameHandler = (type: MessageType, payload: Uint8Array, h: FrameHeader) => void;

export function onFrames(conn: Connection, handler: FrameHandler): void {
  conn.setSink({ target: (h) => new Uint8Array(h.length), frame: (h, payload) => handler(h.type, payload, h) });
}

/**
 * Dials host:port (retrying for `dialMs` while it is not up yet; 0 = one attempt) and authenticates
 * within `handshakeMs`.
 */
export async function dialCluster(host: string, port: number, what: string, token: string, dialMs: number, handshakeMs = dialMs): Promise<Connection> {
  const conn = await dialWithRetry({ host, port, rank: -1, what }, dialMs);
  await dialHandshake(conn, clusterHandshake(token, handshakeMs));
  return conn;
}

let nextPeerId = 0;

/**
 * Accepts a socket and authenticates it; rejects (the connection already closed) on any failure.
 * `pending` caps the acceptor's unauthenticated sockets.
 */
export async function acceptCluster(socket: net.Socket, token: string, timeoutMs: number, pending: PendingHandshakes): Promise<Connection> {
  const conn = Connection.accept(socket);
  await acceptHandshake(conn, clusterHandshake(token, timeoutMs), () => nextPeerId++ % 0x7fffffff, pending);
  return conn;
}

/** Sends one cluster frame; a closed connection is not an error here (its 'closed' handler deals with it). */
export function sendFrame(conn: Connection, type: MessageType, payload: Uint8Array): void {
  if (conn.isOpen) conn.send(type, -1, 0, 0, payload).catch(() => {});
}
