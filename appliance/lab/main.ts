/**
 * `npm start [-- options]`: the whole data plane on one machine. Starts N real appliances on loopback,
 * a GWLB emulator in front of them and a sink behind, the contribution pipeline beside them (SRT
 * contributors → MediaConnect stand-in → appliances → MediaLive stand-in → HLS) and the dashboard,
 * plays the scenarios (all of them by default), shows a live view, then prints a summary and writes
 * lab-report.json and lab-report.html. Exit status 1 when any scenario's expectation failed, 2 when
 * the lab could not run.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import pc from "picocolors";
import { type PolicyInput, validatePolicy } from "../../contracts/policy.ts";
import { defaultPolicy } from "./appliances/policy-file.ts";
import { Lab, type LabOptions } from "./lab.ts";
import { Pipeline } from "./pipeline/pipeline.ts";
import { missingTools } from "./pipeline/processes.ts";
import {
  htmlReportPath,
  type LabReport,
  runSummary,
  summaryTable,
  writeHtmlReport,
  writeReport,
} from "./report.ts";
import { LAB_RATE_BURST_SECONDS, LAB_RATE_CEILING_PPS } from "./scenarios/attacks.ts";
import { DRILLS, SCENARIOS, scenarioNamed } from "./scenarios/index.ts";
import type { Scenario, ScenarioResult } from "./scenarios/scenario.ts";
import { ffmpegAvailable } from "./sources.ts";
import { LiveView } from "./view/live-view.ts";
import { OperatorActions } from "./web/actions.ts";
import { chromiumAvailable } from "./web/browser.ts";
import { DashboardServer } from "./web/server.ts";
import { Telemetry } from "./web/telemetry.ts";

function number(min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max)
      throw new InvalidArgumentError(`expected a number from ${min} to ${max}`);
    return n;
  };
}

const program = new Command("npm start --")
  .description(
    "Stream Intelligence lab: a GWLB emulator, real appliances and RTP/MPEG-TS streams on loopback",
  )
  .addOption(
    new Option(
      "--scenario <names...>",
      "scenarios to play, in order (all = the five presets, drills = the fault drills)",
    )
      .choices([...SCENARIOS.map((s) => s.name), ...DRILLS.map((s) => s.name), "all", "drills"])
      .default(["all"]),
  )
  .option("--quick", "every scenario briefly (under a minute in all)", false)
  .addOption(new Option("--streams <n>", "clean streams (the seed's load is 10-50)").argParser(number(1, 50)))
  .addOption(
    new Option("--bitrate <mbps>", "bitrate of each clean stream, Mbit/s")
      .argParser(number(0.5, 10))
      .default(4),
  )
  .addOption(new Option("--appliances <n>", "appliance processes").argParser(number(2, 6)).default(2))
  .addOption(
    new Option("--source <kind>", "clean stream source")
      .choices(["synthetic", "ffmpeg"])
      .default("synthetic"),
  )
  .option(
    "--report <file>",
    "where to write the JSON report (the HTML one goes beside it)",
    "lab-report.json",
  )
  .option("--no-view", "plain progress lines instead of the live view")
  .addOption(
    new Option("--web <host:port>", "where the dashboard is served")
      .argParser(hostPort)
      .default({ host: "127.0.0.1", port: 8090 }, "127.0.0.1:8090"),
  )
  .option("--no-web", "no dashboard (the pipeline still runs and the reports are still written)")
  .option("--no-pipeline", "no SRT contributors, MediaConnect/MediaLive stand-ins or HLS")
  .option("--screenshot <file>", "at the end of the run, a PNG of the dashboard from headless Chromium")
  .option("--keep-serving", "after the last scenario, keep the lab and its dashboard up until Ctrl-C", false);

function hostPort(value: string): { host: string; port: number } {
  const match = /^([\w.-]+):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (!match || port > 65535) throw new InvalidArgumentError("expected HOST:PORT, e.g. 127.0.0.1:8090");
  return { host: match[1], port };
}

/** When the lab's contributor schedule hands the second studio's slot to the remote contributor. */
function handoverSeconds(quick: boolean): number {
  return quick ? 20 : 40;
}

/** The appliances' policy in the lab: the shipped default with lab-sized rate ceilings, and the
 * MediaConnect set narrowed to subnet A so that the whitelist rotation has something to add. */
export function labPolicy(): PolicyInput {
  const policy = defaultPolicy();
  policy.sets = { ...policy.sets, mediaconnect: ["10.0.1.0/24"] };
  policy.profiles["rtp-mpegts"].rate = {
    maxPacketsPerSecond: LAB_RATE_CEILING_PPS,
    maxBitsPerSecond: 12_000_000,
    burstSeconds: LAB_RATE_BURST_SECONDS,
  };
  validatePolicy(policy, "lab policy");
  return policy;
}

export function labOptions(flags: {
  quick: boolean;
  streams?: number;
  bitrate: number;
  appliances: number;
  source: string;
}): LabOptions {
  const quick = flags.quick;
  return {
    appliances: flags.appliances,
    streams: flags.streams ?? (quick ? 10 : 20),
    bitrate: flags.bitrate * 1e6,
    quick,
    runDir: mkdtempSync(path.join(tmpdir(), "stream-intel-lab-")),
    policy: labPolicy(),
    healthIntervalMs: quick ? 500 : 1000,
    healthyThreshold: 2,
    unhealthyThreshold: 2,
    deregistrationDelayMs: quick ? 1500 : 4000,
    drainSeconds: quick ? 2.5 : 6,
    source: flags.source as LabOptions["source"],
  };
}

type Flags = ReturnType<typeof program.opts>;

/** Why the flags ask for something this machine cannot do, or null. */
function refusal(flags: Flags): string | null {
  if (flags.source === "ffmpeg" && !ffmpegAvailable())
    return "--source ffmpeg needs ffmpeg on the PATH (Debian/Ubuntu: apt-get install ffmpeg); or use the default synthetic source.";
  if (flags.screenshot && (!flags.web || !chromiumAvailable()))
    return "--screenshot needs the dashboard (no --no-web) and Chromium (Debian: apt-get install chromium).";
  return null;
}

/** Everything one run of the lab starts, and how to stop it all. */
interface LabRun {
  flags: Flags;
  options: LabOptions;
  lab: Lab;
  /** Tools the contribution pipeline needs and this machine lacks. */
  missing: string[];
  pipeline: Pipeline | null;
  telemetry: Telemetry;
  web: DashboardServer | null;
  view: LiveView;
  stopAll(): Promise<void>;
}

function assemble(flags: Flags): LabRun {
  const options = labOptions(flags as Parameters<typeof labOptions>[0]);
  const lab = new Lab(options);
  const missing = flags.pipeline ? missingTools() : [];
  const pipeline =
    flags.pipeline && missing.length === 0
      ? new Pipeline({ lab, handoverAt: new Date(Date.now() + handoverSeconds(options.quick) * 1000) })
      : null;
  const telemetry = new Telemetry(lab, pipeline);
  const web = flags.web
    ? new DashboardServer({
        ...(flags.web as { host: string; port: number }),
        lab,
        telemetry,
        actions: new OperatorActions(lab, pipeline),
        hlsDir: pipeline?.hlsDir ?? null,
      })
    : null;
  const view = new LiveView(lab, Boolean(flags.view) && Boolean(process.stdout.isTTY));
  const stopAll = async () => {
    telemetry.stop();
    pipeline?.stop();
    await Promise.all([lab.stop(), web?.stop()]);
  };
  return { flags, options, lab, missing, pipeline, telemetry, web, view, stopAll };
}

/**
 * Ctrl-C (or SIGTERM) stops the appliances and exits 130; a second one exits at once. Once the run is
 * over and only kept serving, it ends the wait that `keepServing` returns instead.
 */
function handleSignals(run: LabRun): { keepServing: () => Promise<void> } {
  let interrupted = false;
  let release: (() => void) | null = null;
  const onSignal = () => {
    if (release) return release();
    if (interrupted) process.exit(130);
    interrupted = true;
    run.view.stop();
    console.log(pc.yellow("\ninterrupted: stopping the appliances"));
    void run.stopAll().finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    keepServing: () =>
      new Promise<void>((resolve) => {
        release = resolve;
      }),
  };
}

function announce(run: LabRun, scenarios: readonly Scenario[]): void {
  const { flags, options } = run;
  console.log(
    pc.bold("Stream Intelligence lab") +
      pc.dim(
        `  ${options.appliances} appliances, ${options.streams} × ${flags.bitrate} Mbit/s ${options.source} streams, ${scenarios.length} scenario(s)${options.quick ? ", quick" : ""}; logs in ${options.runDir}`,
      ),
  );
  if (flags.pipeline && !run.pipeline)
    console.log(
      pc.yellow(
        `  no contribution pipeline: ${run.missing.join(" and ")} not found (Debian: apt-get install ffmpeg srt-tools)`,
      ),
    );
}

/** Starts the dashboard, the appliances and the pipeline, then plays the scenarios in order. */
async function play(run: LabRun, scenarios: readonly Scenario[], results: ScenarioResult[]): Promise<void> {
  const { lab, pipeline, telemetry, view, web } = run;
  if (web) {
    const where = await web.start().catch((error: Error) => {
      throw new Error(
        `the dashboard cannot listen (${error.message}); pick another --web HOST:PORT or --no-web`,
        {
          cause: error,
        },
      );
    });
    console.log(`  dashboard: ${pc.cyan(where)}`);
  }
  // The contributors dial in while the appliances come up: their first packets wait for a healthy target.
  await Promise.all([lab.start(), pipeline?.start()]);
  telemetry.start();
  if (pipeline && !(await pipeline.waitForPicture(10_000)))
    lab.event("the first contributor's picture is not up after 10 s; see the run directory's logs");
  else if (pipeline) lab.event(`picture up after ${lab.elapsedSeconds().toFixed(1)} s`);
  view.start();
  for (const [i, scenario] of scenarios.entries()) {
    view.setScenario(scenario.name, i + 1, scenarios.length);
    telemetry.setScenario(scenario.name, i + 1, scenarios.length);
    lab.event(`scenario ${scenario.name} started`);
    results.push(
      await scenario.run(lab, (fraction, note) => {
        view.progress(fraction, note);
        telemetry.progress(fraction, note);
      }),
    );
    lab.event(`scenario ${scenario.name}: ${results.at(-1)!.verdict}`);
  }
}

function labReport(run: LabRun, startedAt: Date, results: ScenarioResult[]): LabReport {
  const { flags, options } = run;
  return {
    startedAt: startedAt.toISOString(),
    durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
    options: {
      ...flags,
      streams: options.streams,
      healthIntervalMs: options.healthIntervalMs,
      deregistrationDelayMs: options.deregistrationDelayMs,
      drainSeconds: options.drainSeconds,
    },
    verdict: results.every((r) => r.verdict !== "fail") ? "pass" : "fail",
    scenarios: results,
    events: run.lab.events,
    runDir: options.runDir,
  };
}

/** After the last scenario: the dashboard's summary, the screenshot, and (if asked) serving on. */
async function afterRun(run: LabRun, report: LabReport, keepServing: () => Promise<void>): Promise<void> {
  const { flags, web } = run;
  web?.finish(runSummary(report));
  if (flags.screenshot && web) {
    const { screenshotDashboard } = await import("./web/screenshot.ts");
    const shot = await screenshotDashboard(web.url(), flags.screenshot, run.pipeline !== null).catch(
      (error: Error) => error.message,
    );
    console.log(shot === flags.screenshot ? `  screenshot: ${shot}` : pc.yellow(`  no screenshot: ${shot}`));
  }
  if (flags.keepServing && web) {
    console.log(`  the run is over; the lab and ${web.url()} stay up until Ctrl-C`);
    await keepServing();
  }
}

async function main(): Promise<number> {
  program.parse(process.argv);
  const flags = program.opts();
  const refused = refusal(flags);
  if (refused) {
    console.error(refused);
    return 2;
  }
  const names: string[] = (flags.scenario as string[]).flatMap((n) =>
    n === "all" ? SCENARIOS.map((s) => s.name) : n === "drills" ? DRILLS.map((s) => s.name) : [n],
  );
  const scenarios = names.map((n) => scenarioNamed(n)!);
  const run = assemble(flags);
  const startedAt = new Date();
  const { keepServing } = handleSignals(run);
  announce(run, scenarios);
  const results: ScenarioResult[] = [];
  try {
    await play(run, scenarios, results);
  } catch (error) {
    run.view.stop();
    console.error(pc.red(`lab failed: ${(error as Error).message}`));
    await run.stopAll();
    return 2;
  }
  run.view.stop();
  await run.telemetry.sample();
  const report = labReport(run, startedAt, results);
  await afterRun(run, report, keepServing);
  run.telemetry.stop();
  await run.stopAll();
  writeReport(flags.report, report);
  const html = htmlReportPath(flags.report);
  await writeHtmlReport(html, report, run.telemetry.samples);
  console.log(summaryTable(results));
  console.log(
    `${report.verdict === "pass" ? pc.green("all scenarios passed") : pc.red("some scenarios failed")} in ${report.durationSeconds} s; report: ${flags.report}, ${html}; appliance logs: ${run.options.runDir}`,
  );
  return report.verdict === "pass" ? 0 : 1;
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  process.exitCode = await main();
}
