/**
 * Headless Chromium for the dashboard tests (a helper, not a test file): Debian's `chromium`
 * driven by playwright-core, with a fresh profile. Missing browser: the test is skipped with a
 * message — except under CI=true, where it fails (.ci/run installs chromium).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

export const CHROMIUM = process.env.SMOLCLUSTER_CHROMIUM ?? '/usr/bin/chromium';

const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

/** Why the browser tests cannot run here, or null when they can; throws under CI=true. */
export function browserMissing(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const why = `${CHROMIUM} is not installed (apt-get install -y chromium)`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${why}`);
  return why;
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'smolcluster-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1400, height: 1000 }, timeout: 30_000,
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
