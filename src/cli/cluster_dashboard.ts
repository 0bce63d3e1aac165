import { startDashboard, type Dashboard } from '../dashboard/server.js';

/** The dashboard over a coordinator's folder (its events.jsonl: rounds and node states). */
export async function startClusterDashboard(dir: string, port: number): Promise<Dashboard> {
  const d = await startDashboard({ runs: [{ dir, name: 'cluster', live: true }], port });
  process.stderr.write(`smolcluster: dashboard at ${d.url}\n`);
  return d;
}
