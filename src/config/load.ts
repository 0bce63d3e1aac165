/**
 * Reading and validating the YAML configuration files. Every problem is a ConfigError naming the
 * file, the key (as a dotted path) and what was expected.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename } from 'node:path';
import type * as Yaml from 'yaml';
import type { ZodError, ZodIssue, ZodTypeAny, z } from 'zod';
import { ConfigError } from '../util/errors.js';
import type { ModelType } from '../nn/models/names.js';
import { type DatasetName, modelDatasetMismatch } from './compatibility.js';
import { throwProblems } from './problems.js';
import { type ClusterConfig, type ConfigKind, type NnConfig, clusterConfigSchema, nnConfigSchema } from './schema.js';
import { knownKeys } from './schema_keys.js';
import { canonicalDataset, canonicalModel, closest } from './spellings.js';

const MNIST = { inputDim: 784, out: 10 };

/** yaml, loaded on first use: every command imports this file, most read no YAML, and loading the parser cost each process start ≈ 47 ms. */
let yaml: typeof Yaml | undefined;
const yamlParser = (): typeof Yaml => (yaml ??= createRequire(import.meta.url)('yaml') as typeof Yaml);

/** The YAML document of a file as plain data (mappings as objects). */
export function readYaml(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '', `cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const doc = yamlParser().parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  throwProblems(doc.errors.map((e) => syntaxProblem(file, text, e)));
  const data = doc.toJS() as unknown;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new ConfigError(file, '', 'expected a mapping of keys to values at the top level');
  return data;
}

/**
 * One YAML syntax error, whole: what is wrong, where (the path), and the offending line with a caret
 * under the column. (yaml's own message ends "at line 3, column 1:" before its code frame.)
 */
function syntaxProblem(file: string, text: string, e: { message: string; linePos?: [{ line: number; col: number }, ...unknown[]] }): ConfigError {
  const what = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  if (!e.linePos) return new ConfigError(file, '', `not valid YAML: ${what}`);
  const { line, col } = e.linePos[0];
  const lines = text.split(/\r?\n/);
  const source = lines[line - 1] ?? '';
  // At the end of the file the offending line is empty: show the last one with text instead.
  if (source.trim() === '') {
    let before = line - 2;
    while (before >= 0 && lines[before].trim() === '') before--;
    const last = before >= 0 ? `; its last line, ${before + 1}, is:\n    ${lines[before]}` : '';
    return new ConfigError(file, `line ${line}, column ${col}`, `not valid YAML: ${what}, at the end of the file${last}`);
  }
  return new ConfigError(file, `line ${line}, column ${col}`, `not valid YAML: ${what}:\n    ${source}\n    ${' '.repeat(Math.max(0, col - 1))}^`);
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
  if (!r.success) throwProblems(issueProblems(file, schema, r.error));
  return r.data as z.infer<S>;
}

/**
 * Every issue of the file, one problem each; an unknown key says which known key it probably meant,
 * and that key's own "missing" is then left out (`learnin_rate:` is one mistake, not two).
 */
function issueProblems(file: string, schema: ZodTypeAny, err: ZodError): ConfigError[] {
  const problems: ConfigError[] = [];
  const meant = new Set<string>();
  for (const issue of err.issues.filter((i) => i.code === 'unrecognized_keys')) {
    const known = knownKeys(schema, issue.path);
    for (const k of (issue as ZodIssue & { code: 'unrecognized_keys' }).keys) {
      const guess = closest(k, known);
      const path = [...issue.path.map(String), k].join('.');
      if (guess) meant.add([...issue.path.map(String), guess].join('.'));
      problems.push(new ConfigError(file, path, `unknown key${guess ? `: did you mean ${guess}?` : ''} (not one SmolCluster documents; see docs/CONFIG.md)`));
    }
  }
  for (const issue of err.issues.filter((i) => i.code !== 'unrecognized_keys')) {
    const path = issue.path.map(String).join('.');
    if (meant.has(path) && issue.code === 'invalid_type' && issue.received === 'undefined') continue;
    problems.push(new ConfigError(file, path, issueMessage(issue)));
  }
  return problems;
}

function issueMessage(issue: ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.received === 'undefined' ? `missing: expected ${article(issue.expected)}` : `expected ${article(issue.expected)}, got ${article(issue.received)}`;
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
  const problems: ConfigError[] = [];
  if (c.workers && c.workers.length !== c.num_workers) {
    problems.push(new ConfigError(file, 'workers', `lists ${c.workers.length} host(s) but num_workers is ${c.num_workers}`));
  }
  if (c.host_ip && typeof c.host_ip === 'object') {
    for (const [key, name] of [['server', c.server], ...(c.workers ?? []).map((w, i) => [`workers.${i}`, w])] as [string, string | undefined][]) {
      if (name !== undefined && !(name in c.host_ip)) problems.push(new ConfigError(file, key, `host "${name}" has no address under host_ip`));
    }
    if (!c.server && !c.worker_connect_ip) problems.push(new ConfigError(file, 'server', 'host_ip is a map of hosts: name the server host (or give worker_connect_ip)'));
  }
  throwProblems(problems);
  return c;
}

export function loadNnConfig(file: string): NnConfig {
  const n = validate(file, nnConfigSchema, readYaml(file));
  const problems: ConfigError[] = [];
  if (!/^cnn$/i.test(n.model.type)) {
    if (n.model.input_dim !== undefined && n.model.input_dim !== MNIST.inputDim) {
      problems.push(new ConfigError(file, 'model.input_dim', `expected ${MNIST.inputDim} for MNIST (28×28 images), got ${n.model.input_dim}`));
    }
    if (n.model.out !== undefined && n.model.out !== MNIST.out) problems.push(new ConfigError(file, 'model.out', `expected ${MNIST.out} for MNIST's 10 classes, got ${n.model.out}`));
  }
  if (n.gradient_clipping?.enabled && n.gradient_clipping.max_norm === undefined) {
    problems.push(new ConfigError(file, 'gradient_clipping.max_norm', 'missing: expected a positive number when clipping is enabled'));
  }
  // The schema has checked both names; their canonical spellings are ModelType and DatasetName.
  const mismatch = modelDatasetMismatch(canonicalModel(n.model.type) as ModelType, canonicalDataset(n.dataset.name) as DatasetName);
  if (mismatch) problems.push(new ConfigError(file, 'model.type', mismatch));
  throwProblems(problems);
  return n;
}

export type LoadedConfig = { kind: 'cluster'; file: string; config: ClusterConfig } | { kind: 'nn'; file: string; config: NnConfig };

/** Loads a file of either kind (detected from its keys or name). */
export function loadConfigFile(file: string): LoadedConfig {
  const kind = detectKind(file, readYaml(file));
  return kind === 'cluster' ? { kind, file, config: loadClusterConfig(file) } : { kind, file, config: loadNnConfig(file) };
}
