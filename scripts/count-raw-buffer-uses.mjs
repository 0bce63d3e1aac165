#!/usr/bin/env node
// Counts, outside src/tensor/backends/, the three ways code above the backends reaches past the
// device boundary (issue 19 §1, issue 29 §1):
//  - raw buffer uses: a `.data` or `.grad` read on a Tensor or ParamArena that yields a
//    Float32Array / Float64Array, and any cast of an opaque DeviceBuffer (must stay 0);
//  - synchronous host reads: any call, whatever its name, on a Storage (or a class implementing
//    it), a Tensor, a DeviceScalar or a device's allocator (DeviceMemory: hostMemory, int32View)
//    that returns host values (a typed array, a number, number[]) without a Promise: each throws
//    on a GPU or hands out the cpu's own memory. The boundary rooms (src/tensor/boundary/: host
//    values and storage copies, which nn/ and parallel/ use too; src/train/boundary/: the host
//    arena and the model's buffers) are exempt: mapping the cpu's own memory there is what lets
//    every other room stay asynchronous (the storage collectives, parallel/boundary/, need no
//    exemption: they reach host memory through tensor/boundary/);
//  - device branches: a comparison (=== / !==) with the CPU constant or a device's name as a
//    literal ('cpu', 'webgpu'), and every use of an `onHost` member or variable. src/cli/
//    and src/config/ are exempt (they parse the user's --device).
//
//   node scripts/count-raw-buffer-uses.mjs [root] [--json]
//
// root defaults to the current directory (a checkout with src/ and tsconfig.json; its
// node_modules or this one's provide typescript). Prints each count with its files; --json prints
// { total, files, handleReads, syncReads: { total, files }, deviceBranches: { total, files } }.
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

const boundaries = [join(root, 'src', 'tensor', 'boundary') + sep, join(root, 'src', 'train', 'boundary') + sep];
const branchExempt = [join(root, 'src', 'cli') + sep, join(root, 'src', 'config') + sep];
const READ_OWNERS = new Set(['Storage', 'Tensor', 'DeviceScalar', 'DeviceMemory']);
const HOST_VALUES = new Set(['Float32Array', 'Float64Array', 'Uint16Array', 'Int32Array', 'Uint8Array']);
const DEVICE_LITERALS = new Set(['cpu', 'webgpu', 'gpu']);

/** The receiver's type is a storage (or implements one), a tensor or a device scalar. */
function isReadOwner(type) {
  const parts = type.getNonNullableType().isUnion() ? type.getNonNullableType().types : [type.getNonNullableType()];
  return parts.some((t) => {
    if (READ_OWNERS.has(t.getSymbol()?.getName() ?? '')) return true;
    const decl = t.getSymbol()?.declarations?.[0];
    if (!decl || !ts.isClassDeclaration(decl)) return false;
    return (decl.heritageClauses ?? []).some((h) => h.types.some((e) => READ_OWNERS.has(e.expression.getText())));
  });
}

/** Host values handed back at once: a typed array, a number or a number[] (not a Promise). */
function isHostValue(type) {
  const parts = type.isUnion() ? type.types : [type];
  return parts.some((t) => {
    if (t.flags & ts.TypeFlags.NumberLike) return true;
    const name = t.getSymbol()?.getName() ?? '';
    if (HOST_VALUES.has(name)) return true;
    return name === 'Array' && checker.isArrayType(t) && (checker.getTypeArguments(t)[0]?.flags & ts.TypeFlags.NumberLike) !== 0;
  });
}

function isSyncRead(node) {
  if (!ts.isCallExpression(node) || !ts.isPropertyAccessExpression(node.expression)) return false;
  if (!isReadOwner(checker.getTypeAtLocation(node.expression.expression))) return false;
  return isHostValue(checker.getTypeAtLocation(node));
}

/** The CPU constant of src/tensor/storage.ts, however imported or renamed. */
function isCpuConstant(node) {
  if (!ts.isIdentifier(node) && !ts.isPropertyAccessExpression(node)) return false;
  let sym = checker.getSymbolAtLocation(ts.isIdentifier(node) ? node : node.name);
  if (sym && sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
  const decl = sym?.declarations?.[0];
  return sym?.getName() === 'CPU' && !!decl && decl.getSourceFile().fileName.endsWith(join('tensor', 'storage.ts').split(sep).join('/'));
}

/** The CPU constant or a device's name as a literal ('cpu', 'webgpu'). */
function isDeviceConstant(node) {
  while (ts.isParenthesizedExpression(node)) node = node.expression;
  if (ts.isStringLiteralLike(node)) return DEVICE_LITERALS.has(node.text);
  return isCpuConstant(node);
}

function isDeviceBranch(node) {
  if (ts.isBinaryExpression(node)) {
    const k = node.operatorToken.kind;
    const eq = [ts.SyntaxKind.EqualsEqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsEqualsToken, ts.SyntaxKind.EqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsToken];
    // `a.device === b.device` compares two devices and takes no side: only a comparison with a device's name counts.
    return eq.includes(k) && (isDeviceConstant(node.left) || isDeviceConstant(node.right));
  }
  // Every read of an onHost flag is a branch on the device; its declaration is not.
  if (ts.isIdentifier(node) && node.text === 'onHost') {
    const p = node.parent;
    const declares = (ts.isVariableDeclaration(p) || ts.isPropertyDeclaration(p) || ts.isGetAccessorDeclaration(p) ||
      ts.isParameter(p) || ts.isMethodDeclaration(p) || ts.isPropertySignature(p)) && p.name === node;
    return !declares;
  }
  return false;
}

const counts = {};
const syncReads = {};
const deviceBranches = {};
let handleReads = 0;
for (const file of files) {
  if (file.startsWith(backends)) continue;
  const sf = program.getSourceFile(file);
  if (!sf) continue;
  const rel = relative(root, file).split(sep).join('/');
  const readsCount = !boundaries.some((d) => file.startsWith(d));
  const branchesCount = !branchExempt.some((d) => file.startsWith(d));
  let n = 0;
  let reads = 0;
  let branches = 0;
  const visit = (node) => {
    if (isRawAccess(node) || isDeviceBufferCast(node)) n++;
    if (isHandleRead(node)) handleReads++;
    if (readsCount && isSyncRead(node)) reads++;
    if (branchesCount && isDeviceBranch(node)) branches++;
    ts.forEachChild(node, visit);
  };
  visit(sf);
  if (n > 0) counts[rel] = n;
  if (reads > 0) syncReads[rel] = reads;
  if (branches > 0) deviceBranches[rel] = branches;
}
const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
const total = sum(counts);
if (json) {
  process.stdout.write(`${JSON.stringify({
    total, files: counts, handleReads,
    syncReads: { total: sum(syncReads), files: syncReads },
    deviceBranches: { total: sum(deviceBranches), files: deviceBranches },
  })}\n`);
} else {
  const list = (o) => {
    for (const p of Object.keys(o).sort()) process.stdout.write(`  ${String(o[p]).padStart(4)}  ${p}\n`);
  };
  const paths = Object.keys(counts).sort();
  const outsideTensor = paths.filter((p) => !p.startsWith('src/tensor/'));
  process.stdout.write(`raw tensor/arena buffer uses outside src/tensor/backends/: ${total} in ${paths.length} file(s)` +
    ` (${outsideTensor.length} file(s) outside src/tensor)\n`);
  list(counts);
  process.stdout.write(`synchronous host reads outside src/tensor/backends/ and the boundary rooms (src/tensor/boundary/, src/train/boundary/): ${sum(syncReads)} in ${Object.keys(syncReads).length} file(s)\n`);
  list(syncReads);
  process.stdout.write(`device branches outside src/tensor/backends/, src/cli/, src/config/: ${sum(deviceBranches)} in ${Object.keys(deviceBranches).length} file(s)\n`);
  list(deviceBranches);
  process.stdout.write(`host reads through a storage handle (readSync / values / gradValues): ${handleReads}\n`);
}
