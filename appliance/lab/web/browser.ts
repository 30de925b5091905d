/**
 * Headless Chromium for the dashboard: Debian's `chromium` driven by puppeteer-core through its
 * executable path (puppeteer's own browser download is not used), every time with a fresh profile
 * that is removed on close, and with nothing that would reach out of the machine.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser } from "puppeteer-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

export interface Chromium {
  readonly browser: Browser;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<Chromium> {
  const { default: puppeteer } = await import("puppeteer-core"); // loaded only when a browser is wanted
  const profile = mkdtempSync(path.join(tmpdir(), "stream-intel-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    ignoreDefaultArgs: true,
    pipe: true,
    defaultViewport: { width: 1440, height: 1400 },
    args: [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, "--window-size=1440,1400", "about:blank"],
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => {}); // a browser that already died has nothing left to close
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
