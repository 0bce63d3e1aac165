/**
 * Runs a Python reference computation (torch, transformers, gguf-py) for a comparison test — not a
 * test file. The same script on the same inputs gives the same outputs, so a call is remembered:
 *  - within one process, always: a spec run once per backend ([js], [native], [webgpu]) asks for
 *    the same reference each time;
 *  - across processes where SMOLCLUSTER_REFERENCE_CACHE names a folder: scripts/cpu-levels.sh sets
 *    one for its reruns of the same tests at each CPU cap, whose references do not depend on the
 *    cap (only our side does); .ci/run names it and keeps it for npm test after them. The folder
 *    lives for one such run; nothing else sets it.
 * A call's key is the Python, stdin, and its arguments with every existing file or folder replaced
 * by a hash of its contents (the script, the model folder, the inputs a test wrote to a temporary
 * folder) and each declared output by its position. Where an input file names paths under the
 * test's temporary folder (`root`: a jobs file listing model folders), those are hashed by content
 * too and the folder's own name left out, as it differs from run to run. A hit writes the outputs
 * the call wrote back to this call's paths. Only a call that exited 0 is remembered.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ReferenceCall {
  python: string;
  args: readonly string[];
  /** Written to the script's stdin. */
  input?: string;
  /** Files the script writes (paths among args or not): restored on a hit. */
  outputs?: readonly string[];
  /** The test's temporary folder, where input files name paths under it. */
  root?: string;
  timeout?: number;
  maxBuffer?: number;
}

export interface ReferenceResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

const inProcess = new Map<string, ReferenceResult & { saved: Buffer[] }>();

/** Runs `call` or gives back what the same call gave before (see the file's comment). */
export function runReference(call: ReferenceCall): ReferenceResult {
  const outputs = call.outputs ?? [];
  const key = referenceKey(call, outputs);
  const hit = inProcess.get(key) ?? readCached(key, outputs.length);
  if (hit) {
    outputs.forEach((path, i) => writeFileSync(path, hit.saved[i]));
    inProcess.set(key, hit);
    return { status: hit.status, stdout: hit.stdout, stderr: hit.stderr };
  }
  const r = spawnSync(call.python, [...call.args], {
    input: call.input, encoding: 'utf8', timeout: call.timeout ?? 300_000, maxBuffer: call.maxBuffer ?? 1 << 28,
  });
  const result: ReferenceResult = { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? String(r.error) : '') };
  if (r.status === 0 && outputs.every((p) => existsSync(p))) {
    const saved = outputs.map((p) => readFileSync(p));
    inProcess.set(key, { ...result, saved });
    writeCached(key, result, outputs);
  }
  return result;
}

function referenceKey(call: ReferenceCall, outputs: readonly string[]): string {
  const h = createHash('sha256');
  h.update(`python ${call.python}\0stdin ${call.input ?? ''}\0`);
  for (const arg of call.args) {
    const out = outputs.indexOf(arg);
    if (out >= 0) h.update(`output ${out}\0`);
    else if (existsSync(arg)) h.update(`path ${contentHash(arg, call.root)}\0`);
    else h.update(`arg ${arg}\0`);
  }
  h.update(`outputs ${outputs.length}`);
  return h.digest('hex');
}

/** A file's bytes, or a folder's names and bytes in sorted order, hashed; paths under `root` that a file names, by their contents. */
function contentHash(path: string, root?: string): string {
  const h = createHash('sha256');
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path).sort()) h.update(`${name}\0${contentHash(join(path, name), root)}\0`);
    return h.digest('hex');
  }
  const bytes = readFileSync(path);
  if (!root || !bytes.includes(root)) {
    h.update(bytes);
    return h.digest('hex');
  }
  const text = bytes.toString('utf8');
  h.update(text.split(root).join('<root>'));
  for (const named of new Set(text.match(new RegExp(`${escapeRegExp(root)}[^"\\s]*`, 'g')))) {
    if (named !== path && existsSync(named)) h.update(`\0${named.slice(root.length)} ${contentHash(named)}`);
  }
  return h.digest('hex');
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function cacheDir(): string | undefined {
  return process.env.SMOLCLUSTER_REFERENCE_CACHE || undefined;
}

function readCached(key: string, outputCount: number): (ReferenceResult & { saved: Buffer[] }) | undefined {
  const dir = cacheDir();
  if (!dir || !existsSync(join(dir, key, 'result.json'))) return undefined;
  const result = JSON.parse(readFileSync(join(dir, key, 'result.json'), 'utf8')) as ReferenceResult;
  const saved = Array.from({ length: outputCount }, (_, i) => readFileSync(join(dir, key, `output-${i}`)));
  return { ...result, saved };
}

/** Outputs first, result.json last: a reader that sees result.json sees every output. */
function writeCached(key: string, result: ReferenceResult, outputs: readonly string[]): void {
  const dir = cacheDir();
  if (!dir) return;
  mkdirSync(join(dir, key), { recursive: true });
  outputs.forEach((p, i) => copyFileSync(p, join(dir, key, `output-${i}`)));
  const tmp = join(dir, key, `result.json.${process.pid}`);
  writeFileSync(tmp, JSON.stringify(result));
  renameSync(tmp, join(dir, key, 'result.json'));
}
