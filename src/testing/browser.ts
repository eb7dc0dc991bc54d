// For the explorer's tests: Debian's chromium driven by playwright-core, with the flags that keep it
// from calling out to the internet (updates, sync, safe browsing...) and a fresh profile
// (--user-data-dir) removed on close, or at exit if a test never got that far. Every request that is
// not for the local server is aborted and recorded, so a test can assert there was none.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Request } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
// Mandatory (HELPERS.md and ../shared/DESIGN.md's test rules); the rest silence other background calls.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
  '--no-default-browser-check',
  '--metrics-recording-only',
  '--disable-domain-reliability',
];

export interface LocalBrowser {
  ctx: BrowserContext;
  /** The URLs of the requests that were not for the local server (aborted). */
  offsite: string[];
  /** Closes chromium and removes its profile. */
  close(): Promise<void>;
}

export interface LocalBrowserOptions {
  viewport?: { width: number; height: number };
  /** Sees every request, local or not, before it is continued or aborted. */
  onRequest?: (req: Request) => void;
}

/** Chromium with a fresh profile, allowed to reach `base` (the local server's origin, no trailing slash) only. */
export async function launchLocalBrowser(base: string, opts: LocalBrowserOptions = {}): Promise<LocalBrowser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (scripts/setup.sh does, as root)`);
  const profile = mkdtempSync(join(tmpdir(), 'wallscope-chromium-'));
  const removeProfile = () => rmSync(profile, { recursive: true, force: true });
  process.once('exit', removeProfile);
  let ctx: BrowserContext;
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      ...(opts.viewport ? { viewport: opts.viewport } : {}),
      serviceWorkers: 'block',
    });
  } catch (e) {
    removeProfile();
    process.off('exit', removeProfile);
    throw e;
  }
  const offsite: string[] = [];
  await ctx.route('**/*', async (route) => {
    const req = route.request();
    opts.onRequest?.(req);
    if (req.url().startsWith(base + '/')) await route.continue();
    else {
      offsite.push(req.url());
      await route.abort('blockedbyclient');
    }
  });
  return {
    ctx,
    offsite,
    async close() {
      try {
        await ctx.close();
      } finally {
        removeProfile();
        process.off('exit', removeProfile);
      }
    },
  };
}
