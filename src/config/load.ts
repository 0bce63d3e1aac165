/**
 * Reading and validating the YAML configuration files. Every problem is a ConfigError naming the
 * file, the key (as a dotted path) and what was expected.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseDocument } from 'yaml';
import type { ZodError, ZodIssue, ZodTypeAny, z } from 'zod';
import { ConfigError } from '../util/errors.js';
import { type ClusterConfig, type ConfigKind, type NnConfig, clusterConfigSchema, nnConfigSchema } from './schema.js';

const MNIST = { inputDim: 784, out: 10 };

/** The YAML document of a file as plain data (mappings as objects). */
export function readYaml(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '', `cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const where = e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
    throw new ConfigError(file, where, `not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const data = doc.toJS() as unknown;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new ConfigError(file, '', 'expected a mapping of keys to values at the top level');
  return data;
}

/** Which of the two files a document is: by its keys, else by the file name. */
export function detectKind(file: string, data: unknown): ConfigKind {
  const keys = Object.keys(data as object);
  if (keys.some((k) => ['num_workers', 'host_ip', 'worker_connect_ip', 'port'].includes(k))) return 'cluster';
  if (keys.some((k) => ['batch_size', 'learning_rate', 'model', 'dataset'].includes(k))) return 'nn';
  if (/cluster/i.test(basename(file))) return 'cluster';
  if (/nn|model|train/i.test(basename(file))) return 'nn';
  throw new ConfigError(file, '', 'neither a cluster config (num_workers, host_ip, port, ...) nor an nn config (batch_size, learning_rate, model, ...)');
}

function validate<S extends ZodTypeAny>(file: string, schema: S, data: unknown): z.infer<S> {
  const r = schema.safeParse(data);
  if (!r.success) throw issueError(file, r.error);
  return r.data as z.infer<S>;
}

function issueError(file: string, err: ZodError): ConfigError {
  const issue = err.issues[0];
  return new ConfigError(file, issuePath(issue), issueMessage(issue));
}

function issuePath(issue: ZodIssue): string {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') path.push(issue.keys[0]);
  return path.join('.');
}

function issueMessage(issue: ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.received === 'undefined' ? `missing: expected ${article(issue.expected)}` : `expected ${article(issue.expected)}, got ${article(issue.received)}`;
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? `s (also ${issue.keys.slice(1).join(', ')})` : ''}: not one SmolCluster documents (see docs/CONFIG.md)`;
    case 'too_small':
      return `expected ${issue.type === 'array' ? `at least ${issue.minimum} item(s)` : `${issue.inclusive ? '≥' : '>'} ${issue.minimum}`}`;
    case 'too_big':
      return `expected ${issue.inclusive ? '≤' : '<'} ${issue.maximum}`;
    case 'invalid_enum_value':
      return `expected one of ${issue.options.join(', ')}, got "${String(issue.received)}"`;
    case 'invalid_union':
      return unionMessage(issue);
    default:
      return issue.message.replace(/^Expected/, 'expected');
  }
}

function unionMessage(issue: ZodIssue & { code: 'invalid_union' }): string {
  const first = issue.unionErrors[0]?.issues[0];
  if (first && first.code === 'invalid_type' && first.received !== 'undefined') {
    const kinds = issue.unionErrors.map((e) => e.issues[0]).filter((i) => i?.code === 'invalid_type').map((i) => (i as { expected: string }).expected);
    return `expected ${[...new Set(kinds)].map(article).join(' or ')}, got ${article(first.received)}`;
  }
  return first ? issueMessage(first) : issue.message;
}

function article(t: string): string {
  if (t === 'integer') return 'an integer';
  if (t === 'object') return 'a mapping';
  if (t === 'array') return 'a list';
  if (t === 'null' || t === 'undefined') return t;
  return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

export function loadClusterConfig(file: string): ClusterConfig {
  const c = validate(file, clusterConfigSchema, readYaml(file));
  if (c.workers && c.workers.length !== c.num_workers) {
    throw new ConfigError(file, 'workers', `lists ${c.workers.length} host(s) but num_workers is ${c.num_workers}`);
  }
  if (c.host_ip && typeof c.host_ip === 'object') {
    for (const [key, name] of [['server', c.server], ...(c.workers ?? []).map((w, i) => [`workers.${i}`, w])] as [string, string | undefined][]) {
      if (name !== undefined && !(name in c.host_ip)) throw new ConfigError(file, key, `host "${name}" has no address under host_ip`);
    }
    if (!c.server && !c.worker_connect_ip) throw new ConfigError(file, 'server', 'host_ip is a map of hosts: name the server host (or give worker_connect_ip)');
  }
  return c;
}

export function loadNnConfig(file: string): NnConfig {
  const n = validate(file, nnConfigSchema, readYaml(file));
  if (!/^cnn$/i.test(n.model.type)) {
    if (n.model.input_dim !== undefined && n.model.input_dim !== MNIST.inputDim) {
      throw new ConfigError(file, 'model.input_dim', `expected ${MNIST.inputDim} for MNIST (28×28 images), got ${n.model.input_dim}`);
    }
    if (n.model.out !== undefined && n.model.out !== MNIST.out) throw new ConfigError(file, 'model.out', `expected ${MNIST.out} for MNIST's 10 classes, got ${n.model.out}`);
  }
  if (n.gradient_clipping?.enabled && n.gradient_clipping.max_norm === undefined) {
    throw new ConfigError(file, 'gradient_clipping.max_norm', 'missing: expected a positive number when clipping is enabled');
  }
  return n;
}

export type LoadedConfig = { kind: 'cluster'; file: string; config: ClusterConfig } | { kind: 'nn'; file: string; config: NnConfig };

/** Loads a file of either kind (detected from its keys or name). */
export function loadConfigFile(file: string): LoadedConfig {
  const kind = detectKind(file, readYaml(file));
  return kind === 'cluster' ? { kind, file, config: loadClusterConfig(file) } : { kind, file, config: loadNnConfig(file) };
}
