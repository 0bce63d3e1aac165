/**
 * The TypeScript examples of README.md and docs/*.md (```ts blocks): each is type-checked as a
 * user's file importing 'smolcluster' would be — through the package's "exports" and its .d.ts,
 * from a folder whose node_modules/smolcluster links to this repository — then run with node, and
 * its stdout compared with the first ```text block after it (before any other code block). Numbers
 * with a decimal point may differ by NUMBER_TOLERANCE (relative): another CPU or backend rounds
 * differently; everything else must be the same. `<!-- doc-test: no-run (reason) -->` before a block:
 * type-checked only; `skip (reason)`: left alone; `ranks N (reason)`: run as N processes, as a user
 * starts a cluster by hand (RANK, WORLD_SIZE, MASTER_PORT, SMOLCLUSTER_TOKEN set), rank 0's output
 * compared.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

export const NUMBER_TOLERANCE = 0.02;

export interface TsExample {
  /** file:line of the code block's first line. */
  where: string;
  code: string;
  run: boolean;
  /** Processes to run it as (one per rank). */
  ranks: number;
  /** The output shown after it, or null when none is shown. */
  output: string[] | null;
}

/** The ```ts examples of one markdown file (path relative to `root`), in order. */
export function tsExamples(root: string, file: string): TsExample[] {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const out: TsExample[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\w*)\s*$/.exec(lines[i]);
    if (!fence) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith('```'));
    const marker = /^<!-- doc-test: (skip|no-run|ranks (\d+))(?: \((.*)\))? -->$/.exec(lines[i - 1]?.trim() ?? '');
    if (['ts', 'typescript'].includes(fence[1]) && marker?.[1] !== 'skip') {
      out.push({
        where: `${file}:${i + 2}`, code: lines.slice(i + 1, end).join('\n'), run: marker?.[1] !== 'no-run', ranks: Number(marker?.[2] ?? 1),
        output: outputAfter(lines, end + 1),
      });
    }
    i = end;
  }
  return out;
}

/** The ```text block after line `from`, if one comes before any other fenced block. */
function outputAfter(lines: string[], from: number): string[] | null {
  for (let i = from; i < lines.length; i++) {
    const fence = /^```(\w*)\s*$/.exec(lines[i]);
    if (!fence) continue;
    if (fence[1] !== 'text') return null;
    const end = lines.findIndex((l, j) => j > i && l.startsWith('```'));
    return lines.slice(i + 1, end);
  }
  return null;
}

/** A folder where `import ... from 'smolcluster'` resolves to this repository, as an installed package. */
export function userFolder(dir: string, root: string): void {
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  symlinkSync(root, join(dir, 'node_modules', 'smolcluster'), 'dir');
  writeFileSync(join(dir, 'package.json'), '{ "type": "module", "private": true }\n');
}

export interface Diagnostic {
  file: string | null;
  /** 1-based. */
  line: number;
  column: number;
  text: string;
}

/** Compiler diagnostics of the files under a user's strict settings, against the package's public types. */
export function typeCheck(files: string[], root: string): Diagnostic[] {
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022,
    strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(root, 'node_modules', '@types')],
    moduleDetection: ts.ModuleDetectionKind.Force,
  });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, ' ');
    if (!d.file || d.start === undefined) return { file: null, line: 0, column: 0, text };
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    return { file: d.file.fileName, line: line + 1, column: character + 1, text };
  });
}

/** Compiles `file` (a .ts) to JavaScript beside it, once. */
export function compileExample(file: string): string {
  const js = file.replace(/\.ts$/, '.mjs');
  const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
  writeFileSync(js, outputText);
  return js;
}

/** Runs a compiled example with node in `cwd`, with `env` added to the environment. */
export function runExample(js: string, cwd: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [js], { cwd, env: { ...process.env, ...env }, timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const NUMBER = /-?\d+(?:\.\d+)?(?:e[+-]?\d+)?/g;

/** Why `actual` is not the output shown (null: it is): same text, integers equal, decimals within NUMBER_TOLERANCE. */
export function outputMismatch(actual: string, shown: string[]): string | null {
  const got = actual.trimEnd().split('\n');
  const want = shown.join('\n').trimEnd().split('\n');
  if (got.length !== want.length) return `${got.length} lines printed, ${want.length} shown`;
  for (let i = 0; i < got.length; i++) {
    const problem = lineMismatch(got[i], want[i]);
    if (problem) return `line ${i + 1}: "${got[i]}" against "${want[i]}": ${problem}`;
  }
  return null;
}

function lineMismatch(got: string, want: string): string | null {
  if (got.replace(NUMBER, '#') !== want.replace(NUMBER, '#')) return 'the text differs';
  const [a, b] = [got.match(NUMBER) ?? [], want.match(NUMBER) ?? []];
  for (let k = 0; k < b.length; k++) {
    if (!b[k].includes('.') || !a[k].includes('.')) {
      if (a[k] !== b[k]) return `${a[k]} is not ${b[k]}`;
      continue;
    }
    const [x, y] = [Number(a[k]), Number(b[k])];
    if (Math.abs(x - y) > NUMBER_TOLERANCE * Math.max(Math.abs(y), 1e-9)) return `${a[k]} is more than ${NUMBER_TOLERANCE * 100}% from ${b[k]}`;
  }
  return null;
}
