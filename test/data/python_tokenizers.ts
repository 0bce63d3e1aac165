/**
 * Python's `tokenizers` (the Rust library Hugging Face ships) as the reference for our tokenizer
 * ids: $SMOLCLUSTER_PYTHON, else /opt/torchvenv/bin/python. Absent, the comparison is skipped with
 * the reason, except under CI=true on a machine that has /opt/torchvenv, where it must run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const VENV = '/opt/torchvenv/bin/python';

function findPython(): string | null {
  const candidates = [process.env.SMOLCLUSTER_PYTHON, VENV].filter((p): p is string => !!p);
  return candidates.find((p) => spawnSync(p, ['-c', 'import tokenizers'], { encoding: 'utf8' }).status === 0) ?? null;
}

export const PYTHON = findPython();
if (!PYTHON && process.env.CI === 'true' && existsSync(VENV)) throw new Error(`python tokenizers: ${VENV} exists but cannot import tokenizers`);
export const SKIP_PYTHON = PYTHON ? false : 'no python with the tokenizers package ($SMOLCLUSTER_PYTHON or /opt/torchvenv)';

/** Python's ids of each text under tokenizer.json `file`, without and with the special tokens the post-processor adds. */
export function pythonIds(file: string, texts: string[]): { plain: number[][]; special: number[][] } {
  const script = [
    'import json, sys',
    'from tokenizers import Tokenizer',
    't = Tokenizer.from_file(sys.argv[1])',
    'texts = json.load(sys.stdin)',
    'print(json.dumps({"plain": [t.encode(x, add_special_tokens=False).ids for x in texts], "special": [t.encode(x).ids for x in texts]}))',
  ].join('\n');
  const r = spawnSync(PYTHON!, ['-c', script, file], { input: JSON.stringify(texts), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python tokenizers failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { plain: number[][]; special: number[][] };
}
