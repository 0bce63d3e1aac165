/**
 * The product's TCP transport over TLS 1.3 sockets, for bench:frame-mac only (a measurement, not a
 * product option): the same frames, reader and TcpTransport, each socket a tls.TLSSocket with
 * AES-GCM under a self-signed certificate made at bench time. The cluster-token handshake is left
 * out (it runs once per connection; this measures the data plane). `kind: 'tcp'` builds the same
 * thing over plain sockets, so the bench can tell the cost of the encryption from that of the
 * socket read path (the product's dialer reads into its frame buffers directly; a TLS socket cannot).
 * Two ranks only: the one socket a rank accepts is from the other.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import type { StoreClient } from '../../src/comm/store/client.js';
import { rankKey } from '../../src/comm/store/keys.js';
import { Connection } from '../../src/comm/tcp/connection.js';
import { TcpTransport } from '../../src/comm/tcp/transport.js';

export interface TlsMaterial {
  cert: string;
  key: string;
}

/** TLS 1.3's AES-GCM suite with the smaller key (the one with AES-NI everywhere). */
const CIPHERSUITES = 'TLS_AES_128_GCM_SHA256';

/** A fresh self-signed P-256 certificate for 127.0.0.1 (openssl, in `dir`). */
export function selfSignedCert(dir: string): TlsMaterial {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

export interface BenchLink {
  transport: TcpTransport;
  /** Negotiated protocol and suite, e.g. "TLSv1.3 TLS_AES_128_GCM_SHA256" ("plain" for tcp). */
  cipher: string;
}

/** A 2-rank transport over fresh sockets of `kind`, addresses exchanged through the store. */
export async function benchTransport(store: StoreClient, rank: number, kind: 'tcp' | 'tls', m: TlsMaterial): Promise<BenchLink> {
  const peer = 1 - rank;
  let acceptedSocket: (s: net.Socket) => void = () => {};
  const accepted = new Promise<net.Socket>((resolve) => (acceptedSocket = resolve));
  const server = kind === 'tls'
    ? tls.createServer({ cert: m.cert, key: m.key, minVersion: 'TLSv1.3', ciphers: CIPHERSUITES }, acceptedSocket)
    : net.createServer({ noDelay: true }, acceptedSocket);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await store.set(rankKey(rank, `bench/${kind}`), String(port));
  const peerPort = Number(Buffer.from(await store.get(rankKey(peer, `bench/${kind}`))).toString('utf8'));
  const dialed = await new Promise<net.Socket>((resolve, reject) => {
    const s = kind === 'tls'
      ? tls.connect({ host: '127.0.0.1', port: peerPort, ca: m.cert, minVersion: 'TLSv1.3', ciphers: CIPHERSUITES }, () => resolve(s))
      : net.connect({ host: '127.0.0.1', port: peerPort }, () => resolve(s));
    s.once('error', reject);
  });
  const inbound = await accepted;
  server.close();
  const conn = (s: net.Socket): Connection => {
    s.setNoDelay(true);
    const c = Connection.accept(s);
    c.peerRank = peer;
    c.markAuthenticated();
    return c;
  };
  const links = [null, null] as Array<{ inbound: Connection; outbound: Connection; host: string } | null>;
  links[peer] = { inbound: conn(dialed), outbound: conn(inbound), host: `127.0.0.1:${peerPort}` };
  const cipher = dialed instanceof tls.TLSSocket ? `${dialed.getProtocol()} ${dialed.getCipher().standardName}` : 'plain';
  return { transport: new TcpTransport(rank, 2, links), cipher };
}
