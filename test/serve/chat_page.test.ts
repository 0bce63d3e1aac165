/**
 * The chat page (src/dashboard/static/chat.html) in headless Chromium against a real server with a
 * token: refused until the API key is typed, then a message streams back the reply generate()
 * gives alone. Skipped without chromium, except under CI=true.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chatPrompt } from '../../src/serve/served_model.js';
import { startModelServer } from '../../src/serve/server.js';
import { browserMissing, launchBrowser } from '../dashboard/browser.js';
import { greedyAlone, tinyServed } from './fixtures.js';

describe('serve: the chat page in a real browser', { timeout: 90_000 }, () => {
  it('asks for the API key, then streams a reply equal to generate() alone', async (t) => {
    const missing = browserMissing();
    if (missing) return t.skip(missing);
    const served = tinyServed(8);
    const server = await startModelServer(served, { port: 0, token: 'sekret' });
    const browser = await launchBrowser();
    try {
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${server.url}/`);
      await page.waitForFunction(() => document.getElementById('model')!.textContent!.startsWith('not connected'), null, { timeout: 20_000 });
      assert.match((await page.textContent('#model'))!, /valid API key/);
      await page.fill('#key', 'sekret');
      await page.dispatchEvent('#key', 'change');
      await page.waitForFunction(() => document.getElementById('model')!.textContent === 'tiny', null, { timeout: 20_000 });
      await page.fill('#max', '8');
      await page.fill('#temp', '0');
      await page.fill('#prompt', 'hello');
      await page.press('#prompt', 'Enter');
      await page.waitForSelector('.msg.assistant[data-done="true"]', { timeout: 30_000 });
      const reply = await page.textContent('.msg.assistant .content');
      assert.equal(reply, await greedyAlone(served, chatPrompt(served, [{ role: 'user', content: 'hello' }]), 8));
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
