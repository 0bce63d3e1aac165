/**
 * compute_nodes.txt, as the original wrote it: one `host,port` per line. Blank lines and lines
 * starting with # are skipped; anything else malformed is an error naming the file and line.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../util/errors.js';

export interface NodeAddress {
  host: string;
  port: number;
}

export function parseNodesFile(text: string, file: string): NodeAddress[] {
  const out: NodeAddress[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `line ${i + 1}`;
    const parts = line.split(',').map((s) => s.trim());
    if (parts.length !== 2 || parts[0] === '') throw new ConfigError(file, where, `expected "host,port", got "${line.slice(0, 80)}"`);
    const port = Number(parts[1]);
    if (!/^\d+$/.test(parts[1]) || port < 1 || port > 65535) throw new ConfigError(file, where, `port "${parts[1].slice(0, 20)}" is not a port number (1–65535)`);
    if (!/^[A-Za-z0-9.:\-\[\]]+$/.test(parts[0])) throw new ConfigError(file, where, `"${parts[0].slice(0, 80)}" is not a host name or address`);
    out.push({ host: parts[0], port });
  });
  return out;
}

export function readNodesFile(file: string): NodeAddress[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '', `cannot read the nodes file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseNodesFile(text, file);
}
