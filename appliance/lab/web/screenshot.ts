/** A picture of the dashboard for the README or a report: headless Chromium, once the video plays. */
import { launchChromium } from "./browser.ts";

/**
 * Opens `url`, waits for the charts to have data and (`video`: when the lab has a picture) for the
 * picture to play, saves a full-page PNG; returns its path.
 */
export async function screenshotDashboard(
  url: string,
  file: string,
  video: boolean,
  timeoutMs = 20_000,
): Promise<string> {
  const chromium = await launchChromium();
  try {
    const page = await chromium.browser.newPage();
    await page.goto(url, { waitUntil: "load" });
    // Page-side expressions are strings: this side of the wire has no DOM types.
    const charts = `Number(document.querySelector("#chart-forwarded").dataset.points) > 3`;
    const playing = `Number(document.querySelector("#player-stats").dataset.decodedFrames) > 50`;
    await page.waitForFunction(video ? `${charts} && ${playing}` : charts, {
      timeout: timeoutMs,
      polling: 250,
    });
    await page.screenshot({ path: file as `${string}.png`, fullPage: true });
    return file;
  } finally {
    await chromium.close();
  }
}
