// Real browsers for console tests: Debian's Chromium driven by playwright-core,
// Debian's Firefox ESR driven by puppeteer-core,
// and the console build made fresh when its sources are newer than dist/console.
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

const root = fileURLToPath(new URL('../..', import.meta.url));

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Launch Chromium; a missing binary fails the test with what to install (never a skip). */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    throw new Error(`console tests need Chromium at ${executablePath}: install it (apt-get install chromium) or set CHROMIUM_PATH`);
  }
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS });
}

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Build dist/console when it is missing or older than console/ sources or the build script. */
export async function ensureConsoleBuilt(): Promise<void> {
  const index = join(root, 'dist', 'console', 'index.html');
  const sources = Math.max(newest(join(root, 'console')), statSync(join(root, 'bin', 'build-console.mjs')).mtimeMs);
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  const mod = (await import(join(root, 'bin', 'build-console.mjs'))) as { buildConsole(o?: { quiet?: boolean }): Promise<unknown> };
  await mod.buildConsole({ quiet: true });
}

/**
 * Firefox (Debian's firefox-esr) over WebDriver BiDi, driven by puppeteer-core
 * (playwright-core can only drive its own patched Firefox builds). A missing
 * binary fails the test with what to install.
 */
export async function launchFirefox(): Promise<import('puppeteer-core').Browser> {
  const executablePath = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';
  if (!existsSync(executablePath)) {
    throw new Error(`console tests need Firefox at ${executablePath}: install it (apt-get install firefox-esr) or set FIREFOX_PATH`);
  }
  const { default: puppeteer } = await import('puppeteer-core');
  const profile = mkdtempSync(join(tmpdir(), 'meshgate-firefox-'));
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath,
    headless: true,
    userDataDir: profile,
    // No proxies and no background traffic: the machine's network is closed.
    extraPrefsFirefox: { 'network.proxy.type': 0, 'app.update.enabled': false, 'browser.safebrowsing.malware.enabled': false, 'browser.safebrowsing.phishing.enabled': false },
  });
  browser.once('disconnected', () => rmSync(profile, { recursive: true, force: true }));
  return browser;
}
