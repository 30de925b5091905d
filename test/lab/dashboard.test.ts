/**
 * The lab as the whole pipeline, watched in a real browser: real ffmpeg encoders calling over SRT
 * (libsrt) from their own loopback addresses, the MediaConnect stand-in's whitelist, real appliances,
 * the MediaLive stand-in's HLS checked by ffprobe, and the dashboard in Debian's headless Chromium:
 * the page loads, charts update, the video plays and keeps playing through an appliance kill, the
 * buttons act on the lab, and the report opens offline. One lab on its own loopback addresses
 * (127.0.14.x), so it runs beside the scenario tests' lab.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lab } from "../../appliance/lab/lab.ts";
import { labOptions } from "../../appliance/lab/main.ts";
import type { ContributorSpec } from "../../appliance/lab/pipeline/contributor.ts";
import { PLAYER } from "../../appliance/lab/pipeline/medialive.ts";
import { labSchedule, Pipeline } from "../../appliance/lab/pipeline/pipeline.ts";
import { type LabReport, runSummary, writeHtmlReport, writeReport } from "../../appliance/lab/report.ts";
import { clean } from "../../appliance/lab/scenarios/clean.ts";
import { OperatorActions } from "../../appliance/lab/web/actions.ts";
import { type Chromium, launchChromium } from "../../appliance/lab/web/browser.ts";
import { DashboardServer } from "../../appliance/lab/web/server.ts";
import { Telemetry } from "../../appliance/lab/web/telemetry.ts";
import { assign, effectiveEntries } from "../../functions/whitelist-rotator.ts";

const HOST = "127.0.14.1";
const INGEST = { address: "127.0.14.5", port: 5000 };
const CONTRIBUTORS: ContributorSpec[] = [
  { label: "studio-a", address: "127.0.14.21", toneHz: 440 },
  { label: "studio-b", address: "127.0.14.22", toneHz: 660 },
  { label: "remote-c", address: "127.0.14.23", toneHz: 880 },
];
const reportDir = mkdtempSync(path.join(tmpdir(), "stream-intel-dashboard-test-"));

/** The page's player figures, from the data attributes the dashboard keeps on them. */
async function player(page: Page) {
  const data = await page.$eval("#player-stats", (el) => ({
    ...(el as unknown as { dataset: object }).dataset,
  }));
  const d = data as Record<string, string | undefined>;
  return {
    currentTime: Number(d.currentTime ?? 0),
    decodedFrames: Number(d.decodedFrames ?? 0),
    bufferedAhead: Number(d.bufferedAhead ?? 0),
    stalls: Number(d.stalls ?? 0),
    longestStall: Number(d.longestStall ?? 0),
  };
}

const attribute = (page: Page, selector: string, name: string) =>
  page.$eval(selector, (el, n) => el.getAttribute(n), name).catch(() => null);

async function until<T>(what: string, probe: () => Promise<T | null | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const actionStatus = (page: Page) => page.$eval("#action-status", (el) => el.textContent ?? "");

const timeline = (page: Page) =>
  page.$$eval("#timeline li", (items) => items.map((li) => li.textContent ?? ""));

describe("the lab as the whole pipeline, in a browser", () => {
  let lab: Lab;
  let pipeline: Pipeline;
  let telemetry: Telemetry;
  let web: DashboardServer;
  let chromium: Chromium;
  let page: Page;
  let url: string;

  beforeAll(async () => {
    lab = new Lab({
      ...labOptions({ quick: true, streams: 2, bitrate: 2, appliances: 2, source: "synthetic" }),
      addresses: { emulator: HOST, appliance: (i) => `127.0.14.${11 + i}` },
    });
    pipeline = new Pipeline({ lab, ingest: INGEST, contributors: CONTRIBUTORS, handoverAt: null });
    telemetry = new Telemetry(lab, pipeline);
    web = new DashboardServer({
      host: HOST,
      port: 0,
      lab,
      telemetry,
      actions: new OperatorActions(lab, pipeline),
      hlsDir: pipeline.hlsDir,
    });
    url = await web.start();
    await lab.start();
    await pipeline.start();
    telemetry.start(500);
    await lab.cleanStreams(2, 300);
    [chromium] = await Promise.all([
      launchChromium(),
      pipeline.waitForPicture(20_000, PLAYER.liveSyncSegments + 1),
    ]);
    page = await chromium.browser.newPage();
  }, 60_000);

  afterAll(async () => {
    await chromium?.close();
    telemetry?.stop();
    pipeline?.stop();
    await Promise.all([web?.stop(), lab?.stop()]);
  });

  it("admits the contributors the rotator's own functions allow and refuses the rest, by address", async () => {
    await until(
      "remote-c refused, the studios on air",
      async () => {
        const view = pipeline.view();
        return view[0].state === "live" && view[1].state === "live" && view[2].state === "refused" && view;
      },
      20_000,
    );
    // What the rotator would write to the flow for this schedule, computed by the rotator's exports.
    const plan = assign(
      [
        { arn: "primary", name: "primary", cidr: undefined },
        { arn: "backup", name: "backup", cidr: undefined },
      ],
      effectiveEntries(labSchedule(CONTRIBUTORS, null), new Date()),
    );
    expect(pipeline.mediaConnect.sources.map((s) => [s.name, s.cidr])).toEqual([...plan]);
    const view = pipeline.view();
    expect(view[2].refusedDatagrams).toBeGreaterThan(0);
    expect(view[2].playlist).toBeNull();
    expect(view.slice(0, 2).map((c) => c.refusedDatagrams)).toEqual([0, 0]);
  });

  it("packages what comes back from the appliances as HLS that ffprobe reads as H.264 and AAC", async () => {
    const playlist = pipeline.view()[0].playlist!;
    const response = await fetch(new URL(playlist, url));
    expect(response.headers.get("content-type")).toBe("application/vnd.apple.mpegurl");
    const text = await response.text();
    expect(text).toMatch(/^#EXTM3U/);
    expect(text).toContain(`#EXT-X-TARGETDURATION:${PLAYER.segmentSeconds}`);
    const segment = text.split("\n").findLast((line) => line.endsWith(".ts"))!;
    const segmentUrl = new URL(segment, new URL(playlist, url));
    const bytes = Buffer.from(await (await fetch(segmentUrl)).arrayBuffer());
    const file = path.join(reportDir, "segment.ts");
    writeFileSync(file, bytes);
    const streams = execFileSync(
      "ffprobe",
      ["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", file],
      { encoding: "utf8" },
    );
    expect(streams).toContain("h264,320,180");
    expect(streams).toContain("aac");
    // The RTP output went through the GWLB emulator and an appliance, and arrived whole.
    const stream = lab.activeSources().find((s) => s.stats?.name === "studio-a")!;
    expect(stream.flow.returned).toBeGreaterThan(100);
    expect(stream.stats!.lost).toBe(0);
  });

  it("loads the dashboard: charts update, contributors show as admitted or refused, the picture plays", async () => {
    await page.goto(url, { waitUntil: "load" });
    // Decoded frames, not currentTime: a live player's currentTime jumps to the stream's position first.
    const first = await until(
      "the picture playing",
      async () => (await player(page)).decodedFrames > 10 && player(page),
      20_000,
    );
    const points = Number(await attribute(page, "#chart-forwarded", "data-points"));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const later = await player(page);
    expect(later.currentTime - first.currentTime).toBeGreaterThan(1.5);
    expect(later.decodedFrames).toBeGreaterThan(first.decodedFrames + 25);
    expect(Number(await attribute(page, "#chart-forwarded", "data-points"))).toBeGreaterThan(points);
    expect(Number(await attribute(page, "#chart-loss", "data-series"))).toBeGreaterThanOrEqual(3);
    expect(await attribute(page, '#contributors tr[data-contributor="studio-a"]', "data-state")).toBe("live");
    expect(await attribute(page, '#contributors tr[data-contributor="remote-c"]', "data-state")).toBe(
      "refused",
    );
    expect(await page.$$eval(".card", (cards) => cards.length)).toBe(2);
  }, 40_000);

  it("keeps playing through a kill of the appliance carrying the picture, no stall longer than its buffer", async () => {
    const carrying = pipeline.view()[0].appliance!;
    const flow = lab.activeSources().find((s) => s.stats?.name === "studio-a")!.flow;
    const movesBefore = flow.moves;
    const before = await player(page);
    // The buffer the player holds when the appliance dies is what it can play through.
    const buffer = Math.min(before.bufferedAhead, PLAYER.segmentSeconds * PLAYER.liveSyncSegments);
    expect(buffer).toBeGreaterThan(1);
    await page.click(`button[data-action="kill"][data-appliance="${carrying}"]`);
    await until("the kill on the page", async () => (await actionStatus(page)).includes("killed"), 5000);
    await until(
      "failover and replacement on the timeline",
      async () => {
        const items = await timeline(page);
        return (
          items.some((t) => t.includes(`target ${carrying}`) && t.includes("unhealthy")) &&
          items.some((t) => t.includes(`operator: appliance ${carrying} replaced`))
        );
      },
      25_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const after = await player(page);
    console.log(
      "kill",
      JSON.stringify({
        buffer,
        before,
        after,
        lost: lab.activeSources().find((s) => s.stats?.name === "studio-a")!.stats!.lost,
      }),
    );
    expect(flow.moves).toBeGreaterThan(movesBefore); // the picture's own flow was failed over
    expect(after.longestStall).toBeLessThanOrEqual(buffer);
    expect(after.decodedFrames).toBeGreaterThan(before.decodedFrames);
    expect(after.currentTime).toBeGreaterThan(before.currentTime + 3);
    expect(await attribute(page, `.card[data-appliance="${carrying}"]`, "data-state")).toBe("healthy");
  }, 45_000);

  it("drains the appliance carrying the picture from its button: nothing lost, and other actions wait", async () => {
    const carrying = pipeline.view()[0].appliance!;
    const stats = lab.activeSources().find((s) => s.stats?.name === "studio-a")!.stats!;
    const lostBefore = stats.lost;
    const before = await player(page);
    const replacedBefore = (await timeline(page)).filter((t) =>
      t.includes(`operator: appliance ${carrying} replaced`),
    ).length;
    await page.click(`button[data-action="drain"][data-appliance="${carrying}"]`);
    await until(
      "the drain accepted on the page",
      async () => (await actionStatus(page)).includes("SIGTERM"),
      5000,
    );
    // One appliance out at a time: a second action is refused with the reason, and bad requests too.
    const other = carrying === 1 ? 2 : 1;
    const post = (action: string, body: string) =>
      fetch(new URL(`/api/actions/${action}`, url), { method: "POST", body });
    const busy = await post("kill", JSON.stringify({ appliance: other }));
    expect(busy.status).toBe(409);
    expect(((await busy.json()) as { message: string }).message).toMatch(/^wait: /);
    expect((await post("kill", "{}")).status).toBe(400);
    expect((await post("kill", "not json")).status).toBe(400);
    expect((await post("reboot", "{}")).status).toBe(405);
    await until(
      "the drain and the replacement on the timeline",
      async () => {
        const items = await timeline(page);
        return (
          items.some((t) => t.includes(`operator: appliance ${carrying} drained, exit 0`)) &&
          items.filter((t) => t.includes(`operator: appliance ${carrying} replaced`)).length > replacedBefore
        );
      },
      25_000,
    );
    const after = await player(page);
    expect(stats.lost).toBe(lostBefore);
    expect(after.decodedFrames).toBeGreaterThan(before.decodedFrames);
    expect(after.stalls).toBe(before.stalls);
  }, 40_000);

  it("starts an attack from its button: nothing of it reaches MediaLive, the drops show on the page", async () => {
    const before = await player(page);
    await page.click("#attack");
    const over = await until(
      "the attack's summary on the timeline",
      async () => (await timeline(page)).find((t) => t.includes("operator: attack over")),
      20_000,
    );
    expect(over).toContain("delivered: unlisted 0, hijack 0");
    expect(over).toMatch(/flow_not_allowed \d+/);
    expect(over).toMatch(/rtp_ssrc_changed \d+/);
    expect(over).toMatch(/rate_packets \d+/);
    await until(
      "the drops in the chart",
      async () => Number(await attribute(page, "#chart-drops", "data-series")) >= 3,
      5000,
    );
    const after = await player(page);
    expect(after.decodedFrames).toBeGreaterThan(before.decodedFrames);
    expect(after.stalls).toBe(before.stalls);
  }, 30_000);

  it("rotates the whitelist from its button: the slot changes hands and the page shows it", async () => {
    await page.click("#rotate");
    await until(
      "remote-c on air and studio-b refused on the page",
      async () =>
        (await attribute(page, '#contributors tr[data-contributor="remote-c"]', "data-state")) === "live" &&
        (await attribute(page, '#contributors tr[data-contributor="studio-b"]', "data-state")) === "refused",
      20_000,
    );
    expect(await actionStatus(page)).toContain("studio-b out, remote-c in");
    expect((await timeline(page)).some((t) => t.includes("whitelist rotated"))).toBe(true);
    expect(await attribute(page, '#contributors tr[data-contributor="studio-a"]', "data-state")).toBe("live");
  }, 30_000);

  it("saves a screenshot with the report, and lab-report.html opens offline with the run's charts and verdicts", async () => {
    const result = await clean.run(lab, () => {});
    const report: LabReport = {
      startedAt: new Date().toISOString(),
      durationSeconds: Math.round(lab.elapsedSeconds()),
      options: {},
      verdict: result.verdict === "fail" ? "fail" : "pass",
      scenarios: [result],
      events: lab.events,
      runDir: lab.options.runDir,
    };
    web.finish(runSummary(report));
    await until(
      "the verdicts on the page",
      () => attribute(page, '#verdicts tr[data-scenario="clean"]', "data-verdict"),
      5000,
    );
    mkdirSync(reportDir, { recursive: true });
    const shot = path.join(reportDir, "lab-dashboard.png");
    await page.screenshot({ path: shot as `${string}.png`, fullPage: true });
    const png = Buffer.from(execFileSync("head", ["-c", "8", shot]));
    expect(png.subarray(1, 4).toString()).toBe("PNG");

    writeReport(path.join(reportDir, "lab-report.json"), report);
    const html = path.join(reportDir, "lab-report.html");
    const samples = [...telemetry.samples];
    await writeHtmlReport(html, report, samples);
    const offline = await chromium.browser.newPage();
    const outside: string[] = [];
    await offline.setRequestInterception(true);
    offline.on("request", (request) => {
      if (request.url().startsWith("file:") || request.url().startsWith("data:")) void request.continue();
      else {
        outside.push(request.url());
        void request.abort();
      }
    });
    await offline.goto(pathToFileURL(html).href, { waitUntil: "load" });
    expect(await attribute(offline, '#verdicts tr[data-scenario="clean"]', "data-verdict")).toBe(
      result.verdict,
    );
    expect(Number(await attribute(offline, "#chart-forwarded", "data-points"))).toBe(samples.length);
    expect(await offline.$$eval("#charts canvas", (canvases) => canvases.length)).toBeGreaterThanOrEqual(6);
    expect(await offline.$eval("#picture", (el) => (el as unknown as { hidden: boolean }).hidden)).toBe(true);
    expect(outside).toEqual([]);
    console.log(`dashboard screenshot and reports in ${reportDir}`);
  }, 40_000);
});
