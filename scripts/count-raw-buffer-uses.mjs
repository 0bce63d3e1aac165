#!/usr/bin/env node
// Counts the expressions that touch a tensor's or an arena's raw host buffer outside
// src/tensor/backends/ (issue 19 §1): a `.data` or `.grad` read on a Tensor or ParamArena that
// yields a Float32Array / Float64Array, and any cast of an opaque DeviceBuffer. Reading values
// through a storage handle (readSync / write) is not counted: that is the sanctioned way.
//
//   node scripts/count-raw-buffer-uses.mjs [root] [--json]
//
// root defaults to the current directory (a checkout with src/ and tsconfig.json; its
// node_modules or this one's provide typescript). Prints the total, the files, and per file the
// count; --json prints { total, files: { path: count }, handleReads } instead.
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve, sep } from 'node:path';

const args = process.argv.slice(2);
const json = args.includes('--json');
const root = resolve(args.find((a) => !a.startsWith('--')) ?? '.');
const ts = createRequire(join(process.cwd(), 'package.json'))('typescript');

function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
const files = sources(join(root, 'src'));
const program = ts.createProgram(files, { ...(config?.options ?? {}), noEmit: true });
const checker = program.getTypeChecker();
const backends = join(root, 'src', 'tensor', 'backends') + sep;

const RAW_MEMBERS = new Set(['data', 'grad']);
const OWNERS = new Set(['Tensor', 'ParamArena']);

function isHostArray(type) {
  const parts = type.isUnion() ? type.types : [type];
  return parts.some((t) => ['Float32Array', 'Float64Array'].includes(t.getSymbol()?.getName() ?? ''));
}

function ownerName(type) {
  const t = type.getNonNullableType();
  return t.getSymbol()?.getName() ?? '';
}

function isRawAccess(node) {
  if (!ts.isPropertyAccessExpression(node) || !RAW_MEMBERS.has(node.name.text)) return false;
  if (!OWNERS.has(ownerName(checker.getTypeAtLocation(node.expression)))) return false;
  return isHostArray(checker.getTypeAtLocation(node));
}

function isDeviceBufferCast(node) {
  if (!ts.isAsExpression(node) && !ts.isTypeAssertionExpression(node)) return false;
  // `b as unknown as X` is one cast: count the outermost only.
  if (ts.isAsExpression(node.parent)) return false;
  let inner = node.expression;
  while (ts.isAsExpression(inner) || ts.isParenthesizedExpression(inner)) inner = inner.expression;
  return checker.getTypeAtLocation(inner).getSymbol()?.getName() === 'DeviceBuffer';
}

/** A host read through a handle (storage.readSync(), tensor.values() / gradValues()): allowed, counted for information. */
function isHandleRead(node) {
  if (!ts.isCallExpression(node) || !ts.isPropertyAccessExpression(node.expression)) return false;
  const name = node.expression.name.text;
  if (!['readSync', 'values', 'gradValues'].includes(name)) return false;
  return ['Storage', 'Tensor'].includes(ownerName(checker.getTypeAtLocation(node.expression.expression)));
}

const counts = {};
let handleReads = 0;
for (const file of files) {
  if (file.startsWith(backends)) continue;
  const sf = program.getSourceFile(file);
  if (!sf) continue;
  let n = 0;
  const visit = (node) => {
    if (isRawAccess(node) || isDeviceBufferCast(node)) n++;
    if (isHandleRead(node)) handleReads++;
    ts.forEachChild(node, visit);
  };
  visit(sf);
  if (n > 0) counts[relative(root, file).split(sep).join('/')] = n;
}
const total = Object.values(counts).reduce((a, b) => a + b, 0);
if (json) {
  process.stdout.write(`${JSON.stringify({ total, files: counts, handleReads })}\n`);
} else {
  const paths = Object.keys(counts).sort();
  const outsideTensor = paths.filter((p) => !p.startsWith('src/tensor/'));
  process.stdout.write(`raw tensor/arena buffer uses outside src/tensor/backends/: ${total} in ${paths.length} file(s)` +
    ` (${outsideTensor.length} file(s) outside src/tensor)\n`);
  for (const p of paths) process.stdout.write(`  ${String(counts[p]).padStart(4)}  ${p}\n`);
  process.stdout.write(`host reads through a storage handle (readSync / values / gradValues), allowed: ${handleReads}\n`);
}
