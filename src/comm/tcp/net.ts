/**
 * Listening and dialing with errors a person can act on: "port in use" and "unreachable" become one
 * clear line each (typed errors, no stack needed), and dialing retries until its deadline because
 * the other side may simply not have started yet.
 */
import net from 'node:net';
import { PeerError, SmolError } from '../../util/errors.js';
import { Connection, type ConnectionOptions } from './connection.js';

/** Listens on host:port (0 = any free port); resolves with the server once bound. */
export function listen(host: string, port: number, onConnection: (socket: net.Socket) => void): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ noDelay: true }, onConnection);
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(host, port, err)));
    server.listen({ host, port, exclusive: true }, () => {
      server.removeAllListeners('error');
      server.on('error', () => {}); // after bind, per-connection errors surface on the sockets
      resolve(server);
    });
  });
}

function listenError(host: string, port: number, err: NodeJS.ErrnoException): SmolError {
  const where = `${host}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return new SmolError('ADDRESS_IN_USE', `cannot listen on ${where}: port ${port} is already in use (another run still going? pick another port)`, { cause: err });
    case 'EADDRNOTAVAIL':
      return new SmolError('ADDRESS_NOT_AVAILABLE', `cannot listen on ${where}: ${host} is not an address of this machine`, { cause: err });
    case 'EACCES':
      return new SmolError('ADDRESS_FORBIDDEN', `cannot listen on ${where}: permission denied (ports below 1024 need root)`, { cause: err });
    default:
      return new SmolError('LISTEN', `cannot listen on ${where}: ${err.code ?? err.message}`, { cause: err });
  }
}

export function boundPort(server: net.Server): number {
  const a = server.address();
  if (a === null || typeof a === 'string') throw new SmolError('LISTEN', 'server is not bound to a TCP port');
  return a.port;
}

/** Errors that mean "not there yet": worth another try until the deadline. */
const RETRYABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

export interface DialTarget {
  host: string;
  port: number;
  /** Rank of the other side, for the error (-1 if not a rank, e.g. the master's store). */
  rank: number;
  /** What the other side is, for the error ("master", "rank 2"). */
  what: string;
}

/** Dials until connected or the deadline passes; the failure names the target and the last reason. */
export async function dialWithRetry(target: DialTarget, deadlineMs: number, opts: ConnectionOptions = {}): Promise<Connection> {
  const start = Date.now();
  let delay = 25;
  for (;;) {
    try {
      return await Connection.dial(target.host, target.port, opts);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'ERROR';
      const waited = Date.now() - start;
      if (!RETRYABLE.has(code) || waited + delay > deadlineMs) {
        const reason = code === 'ENOTFOUND' ? 'host name not found' : code === 'ECONNREFUSED' ? 'connection refused' : code;
        throw new PeerError(target.rank, `${target.host}:${target.port}`, `cannot reach ${target.what} after ${waited} ms (${reason})`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 500);
    }
  }
}
