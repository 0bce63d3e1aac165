import { existsSync, readFileSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TRACE_FILE } from '../metrics/trace.js';
import { SmolError } from '../util/errors.js';
import { type RunSource, followFolder, openSource } from './follow.js';
import { RunState } from './state.js';
import { isLoopbackHost } from './exposure.js';

/**
 * The dashboard's HTTP server: a small static page (src/dashboard/static, charts by uPlot from
 * node_modules — nothing from the network) and, per run, a stream of server-sent events: the whole
 * state when a page connects, then what is new after each poll of the run's files. Bound to
 * 127.0.0.1 unless told otherwise; requests naming another host are refused (DNS rebinding).
 */

export interface DashboardOptions {
  /** Experiment folders (followed as they grow) or result/run json files. */
  runs: Array<string | { dir: string; name: string; live: true }>;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** How often the runs' files are read (ms). */
  pollMs?: number;
}

export interface Dashboard {
  url: string;
  port: number;
  /** Reads the files now and sends what is new. */
  poll(): void;
  /** A last poll, then every page is told the run ended and the server stops. */
  close(): Promise<void>;
}

/** The page's files, resolved from the package root (the same from dist/ and an installed package). */
const STATIC_DIR = fileURLToPath(new URL('../../../src/dashboard/static/', import.meta.url));
const require = createRequire(import.meta.url);

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.json': 'application/json' };

function staticFiles(): Map<string, string> {
  const files = new Map<string, string>([
    ['/', join(STATIC_DIR, 'index.html')],
    ['/app.js', join(STATIC_DIR, 'app.js')],
    ['/style.css', join(STATIC_DIR, 'style.css')],
  ]);
  const uplot = (f: string): string => require.resolve(`uplot/dist/${f}`);
  files.set('/vendor/uPlot.iife.min.js', uplot('uPlot.iife.min.js'));
  files.set('/vendor/uPlot.min.css', uplot('uPlot.min.css'));
  for (const [route, file] of files) if (!existsSync(file)) throw new SmolError('DASHBOARD', `dashboard: ${file} is missing (for ${route})`);
  return files;
}

interface Tracked {
  source: RunSource;
  state: RunState;
  clients: Set<ServerResponse>;
}

export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  const host = o.host ?? '127.0.0.1';
  const files = staticFiles();
  const runs: Tracked[] = o.runs.map((r) => {
    const source = typeof r === 'string' ? openSource(r) : followFolder(r.dir, r.name);
    return { source, state: new RunState(source.label, source.dir), clients: new Set() };
  });
  const poll = (): void => {
    for (const run of runs) {
      const fresh = run.source.poll(run.state);
      if (fresh) {
        run.state = fresh;
        const snap = JSON.stringify(fresh.snapshot());
        fresh.delta(); // the snapshot covers everything so far
        for (const c of run.clients) send(c, 'init', snap);
      } else if (run.clients.size > 0) {
        const d = JSON.stringify(run.state.delta());
        for (const c of run.clients) send(c, 'update', d);
      } else {
        run.state.delta(); // nobody listening: move the cursor along
      }
    }
  };
  poll();

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      if (!res.headersSent) reply(res, 500, 'text/plain', `dashboard error: ${(e as Error).message}\n`);
      else res.end();
    }
  });
  const allowedHosts = new Set(['127.0.0.1', 'localhost', '[::1]', host.includes(':') ? `[${host}]` : host]);

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const hostHeader = (req.headers.host ?? '').replace(/:\d+$/, '');
    if (isLoopbackHost(host) && !allowedHosts.has(hostHeader)) return reply(res, 403, 'text/plain', 'forbidden host\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'text/plain', 'GET only\n');
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const file = files.get(path);
    if (file) return reply(res, 200, TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream', readFileSync(file));
    if (path === '/api/runs') {
      return reply(res, 200, TYPES['.json'], JSON.stringify(runs.map((r, id) => ({ id, label: r.source.label, path: r.source.path }))));
    }
    const m = /^\/api\/runs\/(\d+)\/(snapshot|stream|trace\.json)$/.exec(path);
    const run = m ? runs[Number(m[1])] : undefined;
    if (!m || !run) return reply(res, 404, 'text/plain', 'not found\n');
    if (m[2] === 'snapshot') return reply(res, 200, TYPES['.json'], JSON.stringify(run.state.snapshot()));
    if (m[2] === 'trace.json') {
      const trace = run.source.dir ? join(run.source.dir, TRACE_FILE) : '';
      if (!trace || !existsSync(trace)) return reply(res, 404, 'text/plain', 'this run has no trace.json (train with --trace)\n');
      return reply(res, 200, TYPES['.json'], readFileSync(trace));
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    send(res, 'init', JSON.stringify(run.state.snapshot()));
    if (closing) {
      send(res, 'end', '{}');
      res.end();
      return;
    }
    run.clients.add(res);
    req.on('close', () => run.clients.delete(res));
  }

  let closing = false;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'EADDRINUSE' ? new SmolError('DASHBOARD', `dashboard: port ${o.port} on ${host} is in use (--port)`) : e);
    });
    server.listen(o.port ?? 3000, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const timer = setInterval(poll, o.pollMs ?? 500);
  const heartbeat = setInterval(() => runs.forEach((r) => r.clients.forEach((c) => c.write(': keep-alive\n\n'))), 15_000);
  heartbeat.unref();

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    port,
    poll,
    close: async () => {
      if (closing) return;
      closing = true;
      clearInterval(timer);
      clearInterval(heartbeat);
      poll();
      for (const run of runs) {
        for (const c of run.clients) {
          send(c, 'end', '{}');
          c.end();
        }
        run.clients.clear();
      }
      await closeServer(server);
    },
  };
}

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
  'Referrer-Policy': 'no-referrer',
};

function reply(res: ServerResponse, code: number, type: string, body: string | Buffer): void {
  res.writeHead(code, { ...SECURITY_HEADERS, 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

function send(res: ServerResponse, event: string, data: string): void {
  res.write(`event: ${event}\ndata: ${data}\n\n`);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
