import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { SmolError } from '../util/errors.js';
import { type Dashboard, type DashboardOptions, startDashboard } from './server.js';

/**
 * The dashboard on a worker thread, for a process that trains: a training step keeps its thread
 * busy for as long as it computes, and the page must stay live meanwhile. The thread only reads
 * the run's files, as the launcher's dashboard does.
 */
export interface DashboardThread {
  url: string;
  close(): Promise<void>;
}

type ToMain = { kind: 'ready'; url: string } | { kind: 'error'; message: string } | { kind: 'closed' };

export function startDashboardThread(opts: DashboardOptions): Promise<DashboardThread> {
  const worker = new Worker(new URL(import.meta.url), { workerData: { smolclusterDashboard: opts } });
  // It must never be what keeps the process alive: close() is for a clean end.
  worker.unref();
  return new Promise((resolve, reject) => {
    const onMessage = (m: ToMain): void => {
      if (m.kind === 'error') {
        void worker.terminate();
        reject(new SmolError('DASHBOARD', m.message));
      }
      if (m.kind !== 'ready') return;
      worker.off('message', onMessage);
      resolve({
        url: m.url,
        close: () => new Promise<void>((done) => {
          worker.once('exit', () => done());
          worker.once('message', () => void worker.terminate());
          worker.postMessage('close');
        }),
      });
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
  });
}

if (!isMainThread && parentPort && (workerData as { smolclusterDashboard?: DashboardOptions } | null)?.smolclusterDashboard) {
  const port = parentPort;
  const post = (m: ToMain): void => port.postMessage(m);
  let dashboard: Dashboard | null = null;
  port.on('message', async (m: unknown) => {
    if (m !== 'close') return;
    await dashboard?.close();
    post({ kind: 'closed' });
    port.close();
  });
  startDashboard((workerData as { smolclusterDashboard: DashboardOptions }).smolclusterDashboard).then(
    (d) => {
      dashboard = d;
      post({ kind: 'ready', url: d.url });
    },
    (e: unknown) => post({ kind: 'error', message: e instanceof Error ? e.message : String(e) }),
  );
}
