/**
 * docs/api/ (the reference TypeDoc generates from src/index.ts's exports, `npm run docs:api`) is
 * committed so it can be read in the repository: it must be what the sources generate now. TypeDoc
 * runs with treatWarningsAsErrors (typedoc.json), so a public signature that names a type the
 * package does not export fails here too.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TYPEDOC = join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc');

const out = mkdtempSync(join(tmpdir(), 'smolcluster-api-docs-'));
after(() => rmSync(out, { recursive: true, force: true }));

/** Every file under `dir`, as paths relative to it. */
function files(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(join(dir, e.name), base) : e.isFile() ? [relative(base, join(dir, e.name))] : []))
    .sort();
}

describe('docs/api (generated API reference)', { timeout: 240_000 }, () => {
  it('is what TypeDoc generates from the sources now, without a warning', async () => {
    const r = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile(process.execPath, [TYPEDOC, '--out', out], { cwd: ROOT, timeout: 200_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: unknown }).code ?? -1) : 0, output: `${stdout}${stderr}` });
      });
    });
    assert.equal(r.code, 0, `typedoc failed (every type a public signature names must be exported, or marked @internal):\n${r.output}`);
    const fresh = files(out);
    const committed = files(join(ROOT, 'docs', 'api'));
    const stale = [
      ...fresh.filter((f) => !committed.includes(f)).map((f) => `${f} (missing)`),
      ...committed.filter((f) => !fresh.includes(f)).map((f) => `${f} (no longer generated)`),
      ...fresh.filter((f) => committed.includes(f) && readFileSync(join(out, f), 'utf8') !== readFileSync(join(ROOT, 'docs', 'api', f), 'utf8')).map((f) => `${f} (differs)`),
    ];
    assert.deepEqual(stale, [], `docs/api is out of date: run \`npm run docs:api\` and commit docs/api (${stale.length} files)`);
    assert.ok(fresh.includes('functions/train.md') && fresh.includes('functions/loadSafetensorsModel.md'), 'the reference documents train and loadSafetensorsModel');
  });
});
