/**
 * Multicast DNS for the discovery (bonjour-service: DNS-SD over multicast-dns, the library
 * webpack-dev-server and many others use): a master's advertisement and a browser that collects
 * the clusters answering on the local link. Queries repeat at 0, 1, 2, 4 s ... (RFC 6762 §5.2) so a
 * lost packet or a master that starts a moment later is still found before the deadline.
 */
import { EventEmitter } from 'node:events';
import os from 'node:os';
import type { Bonjour, Service } from 'bonjour-service';
import { SmolError } from '../../util/errors.js';
import { type ClusterAdvert, type FoundCluster, SERVICE_NAME, type UnreadableAdvert, advertTxt, instanceName, isFound, readAdvert } from './record.js';

/** Where multicast goes: the IPv4 address of one interface, or (undefined) the system's choice. */
export interface MdnsPlace {
  interfaceAddress?: string;
}

export interface Advertisement {
  /** The DNS-SD instance name. */
  instance: string;
  /** Says goodbye on the LAN (TTL 0 records) and closes the socket. */
  close(): Promise<void>;
}

/**
 * A Bonjour instance whose socket's troubles reach `onWarning` (a send without a multicast route)
 * and `onFatal` (UDP 5353 cannot be bound) instead of crashing the process: multicast-dns emits
 * those as 'warning' and 'error' events of its own, which bonjour-service does not listen to.
 */
async function openMdns(place: MdnsPlace, onWarning: (err: Error) => void, onFatal: (err: Error) => void): Promise<Bonjour> {
  // Loaded when asked for (~50 ms): most processes never advertise nor browse.
  const { Bonjour: BonjourClass } = await import('bonjour-service');
  // On one interface: send and join the group there, but bind the wildcard (a socket bound to a
  // unicast address receives no multicast on Linux).
  const opts = place.interfaceAddress ? { interface: place.interfaceAddress, bind: '0.0.0.0' } : {};
  const bonjour = new BonjourClass(opts as never, onWarning);
  const socket = (bonjour as unknown as { server?: { mdns?: EventEmitter } }).server?.mdns;
  if (!(socket instanceof EventEmitter)) throw new Error('bonjour-service changed: its multicast-dns socket is no longer at server.mdns');
  socket.on('warning', onWarning);
  socket.on('error', onFatal);
  return bonjour;
}

/** What a socket error means to a user. */
function mdnsProblem(err: Error & { code?: string }): string {
  if (err.code === 'EADDRINUSE' || err.code === 'EACCES') return `cannot listen on UDP 5353 for multicast DNS (${err.code}: ${err.message})`;
  return err.message;
}

/** Advertises the cluster's store at `port` until closed. */
export async function advertiseCluster(advert: ClusterAdvert, port: number, place: MdnsPlace = {}, warn: (line: string) => void = () => {}): Promise<Advertisement> {
  // Best effort: a master whose advertisement fails says so and trains on (workers may still use --master).
  const bonjour = await openMdns(place, (err) => warn(`mDNS advertisement: ${mdnsProblem(err)}`), (err) => warn(`mDNS advertisement stopped: ${mdnsProblem(err)}`));
  const instance = instanceName(advert.clusterName, os.hostname(), process.pid);
  // No probing (RFC 6762 §8.1): the instance name carries the process id, and a conflict would
  // only stop the advertisement, with a line on stdout, where a master would not notice it.
  bonjour.publish({ name: instance, type: SERVICE_NAME, protocol: 'tcp', port, txt: advertTxt(advert), probe: false, disableIPv6: true });
  let closed: Promise<void> | null = null;
  return {
    instance,
    close: () => (closed ??= new Promise<void>((resolve) => {
      const done = (): void => bonjour.destroy(() => resolve());
      const timer = setTimeout(done, 1000); // goodbyes are a courtesy; never hang on them
      bonjour.unpublishAll(() => {
        clearTimeout(timer);
        done();
      });
    })),
  };
}

export interface BrowseOptions extends MdnsPlace {
  /** How long to listen at most (ms). */
  timeoutMs: number;
  /** Stop `settleMs` after this first holds for what was found (a worker: once its cluster answered). */
  enough?: (found: readonly FoundCluster[]) => boolean;
  /** Listening on after `enough`, so a second master of the same name is heard too (ms). */
  settleMs?: number;
  warn?: (line: string) => void;
}

export interface BrowseResult {
  found: FoundCluster[];
  unreadable: UnreadableAdvert[];
  waitedMs: number;
}

/** Listens for `_smolcluster._tcp` on the local link until the deadline (or `enough` and a settle). */
export async function browseClusters(o: BrowseOptions): Promise<BrowseResult> {
  const start = Date.now();
  let fatal: ((err: Error) => void) | undefined;
  const bonjour = await openMdns(o, (err) => o.warn?.(`mDNS browser: ${mdnsProblem(err)}`), (err) => fatal?.(err));
  const byInstance = new Map<string, FoundCluster | UnreadableAdvert>();
  const browser = bonjour.find({ type: SERVICE_NAME, protocol: 'tcp' });
  return new Promise<BrowseResult>((resolve, reject) => {
    fatal = (err) => {
      stop();
      reject(new SmolError('MDNS', `DNS-SD browser: ${mdnsProblem(err)}`, { cause: err }));
    };
    let settle: NodeJS.Timeout | undefined;
    let delay = 1000;
    let requery: NodeJS.Timeout;
    const again = (): void => {
      requery = setTimeout(() => {
        browser.update();
        delay *= 2;
        again();
      }, delay);
    };
    again();
    const stop = (): void => {
      clearTimeout(deadline);
      clearTimeout(requery);
      clearTimeout(settle);
      browser.stop();
      bonjour.destroy();
    };
    const finish = (): void => {
      stop();
      const all = [...byInstance.values()];
      resolve({ found: all.filter(isFound), unreadable: all.filter((x): x is UnreadableAdvert => !isFound(x)), waitedMs: Date.now() - start });
    };
    const deadline = setTimeout(finish, o.timeoutMs);
    const seen = (s: Service): void => {
      byInstance.set(s.name, readAdvert({ name: s.name, port: s.port, txt: (s.txt ?? {}) as Record<string, unknown>, addresses: s.addresses ?? [], referer: s.referer?.address }));
      if (settle === undefined && o.enough?.([...byInstance.values()].filter(isFound))) settle = setTimeout(finish, o.settleMs ?? 0);
    };
    browser.on('up', seen);
    browser.on('txt-update', seen);
    browser.on('srv-update', seen);
    browser.on('down', (s: Service) => byInstance.delete(s.name));
  });
}
