// The browser every web test uses: Debian's chromium driven by playwright-core (the bundled
// download is not reachable here), launched once per test file, with a scratch directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { type Browser, chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';

/**
 * Registers the file's before/after hooks: Chromium launched before the tests, closed after
 * them, and a temporary directory (named after `prefix`) removed with it.
 */
export function useChromium(prefix: string): { readonly tmp: string; browser(): Browser } {
  const tmp = mkdtempSync(join(tmpdir(), `odpsim-${prefix}-`));
  let browser: Browser | undefined;
  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    rmSync(tmp, { recursive: true, force: true });
  });
  return {
    tmp,
    browser: () => {
      if (browser === undefined) throw new Error('Chromium is not running (before() failed?)');
      return browser;
    },
  };
}
