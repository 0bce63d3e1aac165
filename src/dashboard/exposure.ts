import { networkInterfaces } from 'node:os';

/**
 * What a dashboard bound beyond loopback exposes. The page and its API have no login: whoever can
 * reach the address reads the run's config (model, data paths, hyper-parameters), every rank's
 * host name, pid, interfaces and addresses, its metrics and events, and trace.json. On loopback
 * only this machine's users can; the Host check stops other sites' pages in a browser (DNS
 * rebinding), which a public bind cannot.
 */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || host.startsWith('127.');
}

/** Where other machines reach a dashboard bound to every interface (0.0.0.0 / ::): this machine's own addresses. */
export function wildcardUrls(host: string, port: number, interfaces = networkInterfaces()): string[] {
  if (host !== '0.0.0.0' && host !== '::') return [];
  return Object.values(interfaces)
    .flatMap((infos) => (infos ?? []).filter((i) => !i.internal && (i.family === 'IPv4' || host === '::')))
    .map((i) => `http://${i.family === 'IPv6' ? `[${i.address}]` : i.address}:${port}/`);
}

/** The warning to print when `host` is not loopback (null when it is). */
export function exposureWarning(host: string, port: number): string | null {
  if (isLoopbackHost(host)) return null;
  const where = host === '0.0.0.0' || host === '::' ? 'every interface of this machine' : host;
  return (
    `warning: the dashboard listens on ${where} (port ${port}) without any login: anyone who can reach it reads the run's ` +
    'config, host names, addresses, pids, metrics and events. Use it only on a network you trust; ' +
    `from elsewhere prefer an SSH tunnel to the default 127.0.0.1 (ssh -L ${port}:127.0.0.1:${port} this-host).`
  );
}
