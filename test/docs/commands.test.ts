/**
 * Documented commands cannot rot: every command in a `sh`/`bash`/`shell`/`console` code block of
 * README.md and docs/*.md is parsed and checked — its subcommands and flags exist (read from the
 * real CLI's --help), the repository files it names exist, its `npm run` script exists — and the
 * cheap ones run for real (shortened by flags: --steps at most 5, train --max-steps at most 3) in a
 * scratch folder, block after block, expecting exit 0 or the `# exit N` their comment states. In a
 * `console` block only `$ ` lines are commands; the lines after a command that runs are its
 * expected output. A block preceded by `<!-- doc-test: skip (reason) -->` is left alone; by
 * `<!-- doc-test: no-run (reason) -->`, checked but not run.
 *
 * The TypeScript examples (```ts blocks, ts_examples.ts) are type-checked against the package's
 * public types as a user's code importing 'smolcluster' is, and run, their output compared with the
 * ```text block shown after them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLI, MINICLUSTER_CLI } from '../helpers/cli.js';
import { freePort } from '../helpers/cluster.js';
import { compileExample, outputMismatch, runExample, tsExamples, typeCheck, userFolder } from './ts_examples.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const SHELL = new Set(['sh', 'bash', 'shell', 'console']);
/** Programs a documented command may start with besides ours; only their repository paths are checked. */
const OTHERS = new Set(['npm', 'export', 'cat', 'jq', 'kubectl', 'srun', 'mpirun', 'openssl', 'flock', 'node', 'git', 'curl', 'ssh', 'tmux', 'python3', 'scripts/benchrun.sh', 'scripts/gpu-bench.sh']);
/** Subcommands cheap enough to run for real (after shortening). */
const RUNNABLE = new Set(['run', 'validate', 'baseline save', 'baseline compare', 'config check', 'train']);
const REPO_DIRS = ['examples/', 'docs/', 'bench/', 'scripts/', 'data/', 'src/', 'test/', 'dist/'];

interface DocCommand {
  where: string;
  text: string;
  words: string[];
  env: Record<string, string>;
  expectExit: number;
  /** Output lines the doc shows after it (console blocks). */
  output: string[];
}

interface Block {
  where: string;
  commands: DocCommand[];
  /** Checked only (`doc-test: no-run`). */
  noRun: boolean;
}

/** Splits a command line into words, honouring quotes; $(...) stays one word. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\$\([^)]*\))|(\S+)/g;
  for (const m of line.matchAll(re)) out.push(m[1] ?? m[2] ?? m[3] ?? m[4]);
  return out;
}

function parseCommand(where: string, raw: string, output: string[]): DocCommand[] {
  const exit = /#.*\bexit (\d)\b/.exec(raw);
  const line = raw.replace(/\s#.*$/, '').trim();
  return line.split(/\s*(?:&&|;|\|(?!\|))\s*/).filter(Boolean).map((text) => {
    const w = words(text).map((x) => x.replace(/^\[|\]$/g, ''));
    const env: Record<string, string> = {};
    while (w.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(w[0])) {
      const [k, ...v] = w.shift()!.split('=');
      env[k] = v.join('=');
    }
    return { where, text, words: w, env, expectExit: exit ? Number(exit[1]) : 0, output };
  });
}

/** The documented code blocks, in order, with their commands. */
function blocks(file: string): Block[] {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\w*)\s*$/.exec(lines[i]);
    if (!fence) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith('```'));
    const body = lines.slice(i + 1, end);
    const marker = /^<!-- doc-test: (skip|no-run)(?: \((.*)\))? -->$/.exec(lines[i - 1]?.trim() ?? '');
    if (marker) assert.ok(marker[2]?.trim(), `${file}:${i}: a doc-test ${marker[1]} needs a reason in parentheses`);
    const lang = fence[1];
    if (SHELL.has(lang) && marker?.[1] !== 'skip') {
      out.push({ where: `${file}:${i + 2}`, commands: commandsOf(file, i + 2, body, lang === 'console'), noRun: marker?.[1] === 'no-run' });
    }
    i = end;
  }
  return out;
}

function commandsOf(file: string, first: number, body: string[], prompted: boolean): DocCommand[] {
  const out: DocCommand[] = [];
  for (let k = 0; k < body.length; k++) {
    let line = body[k];
    if (prompted) {
      if (!line.startsWith('$ ')) continue;
      line = line.slice(2);
    }
    const start = k;
    while (line.endsWith('\\') && k + 1 < body.length) line = `${line.slice(0, -1)} ${body[++k].trim()}`;
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    const output: string[] = [];
    if (prompted) for (let o = k + 1; o < body.length && !body[o].startsWith('$ '); o++) output.push(body[o]);
    out.push(...parseCommand(`${file}:${first + start}`, line, output));
  }
  return out;
}

interface CliSpec {
  entry: string;
  /** From the first word that is ours (after npx, node dist/src/cli/main.js, srun ... node ...). */
  args: string[];
}

function ours(c: DocCommand): CliSpec | null {
  const w = c.words[0] === 'npx' ? c.words.slice(1) : c.words;
  if (w[0] === 'smolcluster') return { entry: CLI, args: w.slice(1) };
  if (w[0] === 'minicluster') return { entry: MINICLUSTER_CLI, args: w.slice(1) };
  const main = w.findIndex((x) => x.endsWith('dist/src/cli/main.js'));
  return main >= 0 ? { entry: CLI, args: w.slice(main + 1) } : null;
}

function exec(entry: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [entry, ...args], { cwd, env: { ...process.env, ...env }, timeout: 90_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A command's subcommands and long options, read from its --help (cached). */
const helps = new Map<string, Promise<{ commands: string[]; options: string[] }>>();
function help(entry: string, path: string[]): Promise<{ commands: string[]; options: string[] }> {
  const key = `${entry} ${path.join(' ')}`;
  if (!helps.has(key)) {
    helps.set(key, exec(entry, [...path, '--help'], ROOT).then(({ stdout }) => {
      const section = (name: string): string[] => {
        const at = stdout.indexOf(`\n${name}:\n`);
        if (at < 0) return [];
        const rest = stdout.slice(at + name.length + 3).split('\n\n')[0];
        return rest.split('\n');
      };
      return {
        commands: section('Commands').map((l) => /^ {2}([a-z][\w-]*)/.exec(l)?.[1]).filter((x): x is string => Boolean(x) && x !== 'help'),
        options: section('Options').map((l) => /^ {2}(?:-\w, )?(--[\w-]+)/.exec(l)?.[1]).filter((x): x is string => Boolean(x)),
      };
    }));
  }
  return helps.get(key)!;
}

/** The subcommand path a command names and the problems of its flags; empty problems: it parses. */
async function check(c: DocCommand, spec: CliSpec): Promise<{ path: string[]; problems: string[] }> {
  const path: string[] = [];
  let rest = spec.args;
  for (;;) {
    const h = await help(spec.entry, path);
    if (rest.length > 0 && h.commands.includes(rest[0])) {
      path.push(rest[0]);
      rest = rest.slice(1);
      continue;
    }
    const globals = (await help(spec.entry, [])).options;
    const problems: string[] = [];
    if (h.commands.length > 0 && !h.options.some((o) => o !== '--help') && rest.length > 0 && !rest[0].startsWith('-')) {
      problems.push(`"${rest[0]}" is not a subcommand of "${path.join(' ')}" (${h.commands.join(', ')})`);
    }
    for (const w of rest) {
      if (w === '--') break;
      if (!w.startsWith('--')) continue;
      const flag = w.split('=')[0];
      if (![...h.options, ...globals, '--help', '--version'].includes(flag)) problems.push(`${flag} is not an option of "${[spec.entry === CLI ? 'smolcluster' : 'minicluster', ...path].join(' ')}"`);
    }
    return { path, problems };
  }
}

/** Repository paths a command names must exist (globs: at least one match). */
function missingRepoPaths(c: DocCommand): string[] {
  return c.words.filter((w) => REPO_DIRS.some((d) => w.startsWith(d))).filter((w) => {
    if (!w.includes('*')) return !existsSync(join(ROOT, w.replace(/[,:]$/, '')));
    const dir = w.slice(0, w.lastIndexOf('/'));
    const re = new RegExp(`^${w.slice(w.lastIndexOf('/') + 1).replace(/\./g, '\\.').replace(/\*/g, '.*')}$`);
    return !existsSync(join(ROOT, dir)) || !readdirSync(join(ROOT, dir)).some((f) => re.test(f));
  });
}

/** Shortened arguments: at most 5 steps (train: 3); globs expanded against the repository. */
function shortened(args: string[]): string[] {
  const train = args[0] === 'train';
  const out = args.flatMap((w, i) => {
    if (args[i - 1] === '--steps') return [String(Math.min(5, Number(w)))];
    if (args[i - 1] === '--max-steps' && train) return [String(Math.min(3, Number(w) || 3))];
    if (w.includes('*') && REPO_DIRS.some((d) => w.startsWith(d))) {
      const dir = w.slice(0, w.lastIndexOf('/'));
      const re = new RegExp(`^${w.slice(w.lastIndexOf('/') + 1).replace(/\./g, '\\.').replace(/\*/g, '.*')}$`);
      return readdirSync(join(ROOT, dir)).filter((f) => re.test(f)).sort().map((f) => `${dir}/${f}`);
    }
    return [w];
  });
  return train && !args.includes('--max-steps') ? [...out, '--max-steps', '3'] : out;
}

const scratch = mkdtempSync(join(tmpdir(), 'smolcluster-doc-commands-'));
for (const d of ['examples', 'data']) symlinkSync(join(ROOT, d), join(scratch, d));
after(() => rmSync(scratch, { recursive: true, force: true }));

const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

// Two files at a time: most of the time is process start-up, which overlaps on 2 cores.
describe('documented commands (README.md, docs/*.md)', { timeout: 180_000, concurrency: 2 }, () => {
  for (const file of DOCS) {
    const found = blocks(file);
    if (found.length === 0) continue;
    it(`${file}: ${found.reduce((n, b) => n + b.commands.length, 0)} commands parse, name what exists, and the cheap ones run`, async () => {
      const cwd = mkdtempSync(join(scratch, 'doc-'));
      for (const d of ['examples', 'data']) symlinkSync(join(ROOT, d), join(cwd, d));
      const problems: string[] = [];
      let ran = 0;
      for (const block of found) {
        for (const c of block.commands) {
          const at = `${c.where}: ${c.text}`;
          for (const p of missingRepoPaths(c)) problems.push(`${at}: ${p} does not exist`);
          const spec = ours(c);
          if (!spec) {
            const program = c.words[0] === 'npx' ? c.words[1] : c.words[0];
            if (!OTHERS.has(program)) problems.push(`${at}: "${program}" is not a command this test knows (mark the block <!-- doc-test: skip (reason) --> if it is output)`);
            if (program === 'npm' && c.words[1] === 'run' && !(c.words[2] in scripts)) problems.push(`${at}: no npm script "${c.words[2]}"`);
            continue;
          }
          const { path, problems: p } = await check(c, spec);
          problems.push(...p.map((x) => `${at}: ${x}`));
          // A dashboard keeps serving after its run: checked, not run.
          const runnable = p.length === 0 && !block.noRun && RUNNABLE.has(path.join(' ')) && !c.text.includes('[') && !spec.args.includes('--dashboard');
          if (!runnable) continue;
          const args = shortened(spec.args);
          const r = await exec(spec.entry, args, cwd, c.env);
          ran++;
          if (r.code !== c.expectExit) problems.push(`${at}: exit ${r.code}, the doc says ${c.expectExit}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' / ')}`);
          const shown = c.output.filter((l) => l.trim() !== '');
          if (shown.length > 0 && r.stdout.trimEnd() !== shown.join('\n')) problems.push(`${at}: prints\n${r.stdout.trimEnd()}\nbut the doc shows\n${shown.join('\n')}`);
        }
      }
      assert.deepEqual(problems, [], `${file}:\n${problems.join('\n')}`);
      if (ran > 0) process.stdout.write(`# ${file}: ${ran} commands ran\n`);
    });
  }
});

describe('documented TypeScript examples (README.md, docs/*.md)', { timeout: 300_000 }, () => {
  const examples = DOCS.flatMap((file) => tsExamples(ROOT, file));
  const dir = mkdtempSync(join(scratch, 'ts-'));
  userFolder(dir, ROOT);
  const files = examples.map((e, i) => {
    const file = join(dir, `example-${i}.ts`);
    writeFileSync(file, `${e.code}\n`);
    return file;
  });
  /** An example's line as the doc's line. */
  const docLine = (i: number, line: number): string => {
    const [doc, first] = examples[i].where.split(/:(?=\d+$)/);
    return `${doc}:${Number(first) + line - 1}`;
  };

  it(`${examples.length} examples type-check against the package's public types (import ... from 'smolcluster')`, () => {
    assert.ok(examples.some((e) => e.where.startsWith('docs/API.md')), 'docs/API.md has examples');
    const problems = typeCheck(files, ROOT).map((d) => {
      const i = d.file ? files.indexOf(d.file) : -1;
      return `${i >= 0 ? `${docLine(i, d.line)}:${d.column}` : d.file ?? 'tsc'}: ${d.text}`;
    });
    assert.deepEqual(problems, []);
  });

  examples.forEach((e, i) => {
    if (!e.run) return;
    it(`${e.where} runs${e.ranks > 1 ? ` as ${e.ranks} processes` : ''}${e.output ? ' and prints what the doc shows' : ''}`, async () => {
      const cwd = join(dir, `run-${i}`);
      mkdirSync(cwd);
      const js = compileExample(files[i]);
      const cluster: Record<string, string> = e.ranks > 1 ? { WORLD_SIZE: String(e.ranks), MASTER_PORT: String(await freePort()), SMOLCLUSTER_TOKEN: 'doc-example-token-0123456789' } : {};
      const runs = await Promise.all(Array.from({ length: e.ranks }, (_, rank) => runExample(js, cwd, e.ranks > 1 ? { ...cluster, RANK: String(rank) } : {})));
      runs.forEach((x, rank) => assert.equal(x.code, 0, `${e.where}${e.ranks > 1 ? ` (rank ${rank})` : ''}: exit ${x.code}\n${x.stderr}`));
      const r = runs[0];
      const mismatch = e.output ? outputMismatch(r.stdout, e.output) : null;
      assert.equal(mismatch, null, `${e.where}: ${mismatch}\nprinted:\n${r.stdout}`);
    });
  });
});
