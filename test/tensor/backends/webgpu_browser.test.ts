/**
 * The webgpu backend's code, unchanged, in a browser: headless Chromium (Debian's, through
 * playwright-core) with WebGPU on SwiftShader loads the compiled modules from a loopback HTTP
 * server, opens `navigator.gpu` through the same loader, and runs a few kernels (a batched GEMM
 * with transposes and a bias, softmax, a convolution and its backward, layer norm) against the js
 * backend in the same page, within the parity tolerances. Skipped without chromium, except under
 * CI=true.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, normalize, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import { CHROMIUM, browserMissing } from '../../dashboard/browser.js';

/** dist/ (the compiled tree the page imports from). */
const DIST = resolve(new URL('../../../', import.meta.url).pathname);

function serveDist(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0]));
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>webgpu kernels</title>');
      return;
    }
    const file = join(DIST, path);
    if (!file.startsWith(DIST) || !file.endsWith('.js')) {
      res.writeHead(404).end();
      return;
    }
    readFile(file).then(
      (body) => res.writeHead(200, { 'content-type': 'text/javascript' }).end(body),
      () => res.writeHead(404).end(),
    );
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    ok({ server, url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/` });
  }));
}

/** What the page computes: per kernel, the largest |webgpu − js| over (rtol·|js| + atol·max|js|). */
async function kernelErrorsInPage(): Promise<{ errors: Record<string, number>; subgroups: { offered: boolean; used: boolean } } | string> {
  const load = (p: string): Promise<any> => import(p); // eslint-disable-line @typescript-eslint/no-explicit-any
  const { openGpu } = await load('/src/tensor/backends/webgpu/loader.js');
  const { webgpuBackend } = await load('/src/tensor/backends/webgpu/backend.js');
  const { jsBackend } = await load('/src/tensor/backends/js.js');
  const gpu = await openGpu();
  if (typeof gpu === 'string') return gpu;
  const k = webgpuBackend(gpu);
  let seed = 12345;
  const rnd = (n: number): Float32Array => Float32Array.from({ length: n }, () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 1073741824 - 1;
  });
  const errors: Record<string, number> = {};
  const check = async (name: string, bufs: Float32Array[], run: (b: any, x: any[]) => void, compare: number[]): Promise<void> => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const host = bufs.map((b) => Float32Array.from(b));
    const dev = bufs.map((b) => k.memory.fromHost(Float32Array.from(b)));
    run(jsBackend, host);
    run(k, dev.map((s: { buffer: unknown }) => s.buffer));
    let worst = 0;
    for (const i of compare) {
      const got: Float32Array = await dev[i].read();
      const ref = host[i];
      let m = 1;
      for (const v of ref) m = Math.max(m, Math.abs(v));
      for (let j = 0; j < ref.length; j++) worst = Math.max(worst, Math.abs(got[j] - ref[j]) / (1e-4 * Math.abs(ref[j]) + 1e-5 * m));
    }
    errors[name] = worst;
  };
  await check('gemm batched Aᵀ·B + bias', [rnd(33 * 47), rnd(2 * 33 * 29), new Float32Array(2 * 47 * 29), rnd(29)],
    (b, [a, bb, c, bias]) => b.gemm(true, false, 47, 29, 33, 1, a, 0, bb, 33 * 29, 0, c, 47 * 29, 2, bias), [2]);
  await check('softmax', [rnd(5 * 70), new Float32Array(5 * 70)], (b, [x, y]) => b.softmax(x, 5, 70, y), [1]);
  const g = { batch: 2, inC: 3, inH: 7, inW: 6, outC: 4, kH: 3, kW: 3, strideH: 2, strideW: 1, padH: 1, padW: 1, outH: 4, outW: 6 };
  await check('conv2d and its backward', [rnd(2 * 3 * 42), rnd(4 * 3 * 9), rnd(4), new Float32Array(2 * 4 * 24), rnd(2 * 4 * 24), new Float32Array(2 * 3 * 42), new Float32Array(4 * 3 * 9), new Float32Array(4)],
    (b, [x, w, bias, y, gy, gx, gw, gb]) => {
      b.conv2d(g, x, w, bias, y);
      b.conv2dBackward(g, x, w, gy, gx, gw, gb);
    }, [3, 5, 6, 7]);
  await check('layerNorm', [rnd(4 * 40), rnd(40), rnd(40), new Float32Array(160), new Float32Array(4), new Float32Array(4)],
    (b, [x, gm, bt, y, mean, is]) => b.layerNorm(x, 4, 40, gm, bt, 1e-5, y, mean, is), [3, 4, 5]);
  const subgroups = { offered: gpu.adapter.features.has('subgroups') as boolean, used: k.stream.subgroups as boolean };
  gpu.close();
  return { errors, subgroups };
}

describe('webgpu kernels in headless Chromium (WebGPU on SwiftShader)', () => {
  const missing = browserMissing();
  let served: { server: Server; url: string };
  let context: BrowserContext;
  let profile = '';

  before(async () => {
    if (missing) return;
    served = await serveDist();
    profile = mkdtempSync(join(tmpdir(), 'smolcluster-chromium-webgpu-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, timeout: 30_000,
      args: ['--headless', '--no-sandbox', '--no-first-run', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'],
    });
  });
  after(async () => {
    await context?.close().catch(() => undefined);
    served?.server.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('the same modules open navigator.gpu and agree with js within the parity tolerances', { skip: missing ?? false, timeout: 120_000 }, async () => {
    const page = await context.newPage();
    await page.goto(served.url);
    const result = await page.evaluate(kernelErrorsInPage);
    if (typeof result === 'string') assert.fail(`no WebGPU adapter in Chromium: ${result}`);
    // The row reductions (softmax, layer norm) took the subgroup path where the browser's adapter offers it.
    assert.equal(result.subgroups.used, result.subgroups.offered);
    assert.deepEqual(Object.keys(result.errors).sort(), ['conv2d and its backward', 'gemm batched Aᵀ·B + bias', 'layerNorm', 'softmax']);
    for (const [name, worst] of Object.entries(result.errors)) assert.ok(worst <= 1, `${name}: error ${worst.toFixed(3)} × the tolerance`);
  });
});
