/**
 * The end of a run: a summary table for people, lab-report.json for machines and lab-report.html
 * (the run's charts, timeline and verdicts in one file that opens offline).
 */
import { writeFileSync } from "node:fs";
import Table from "cli-table3";
import pc from "picocolors";
import { PLAYER } from "./pipeline/medialive.ts";
import type { ScenarioResult } from "./scenarios/scenario.ts";
import { offlinePage } from "./web/page.ts";
import type { RunSummary, Sample } from "./web/protocol.ts";
import { timelineEvent } from "./web/telemetry.ts";

export interface LabReport {
  startedAt: string;
  durationSeconds: number;
  options: Record<string, unknown>;
  verdict: "pass" | "fail";
  scenarios: ScenarioResult[];
  events: { at: number; message: string }[];
  runDir: string;
}

export function writeReport(path: string, report: LabReport): void {
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
}

/** Where the HTML report goes: beside the JSON one (`lab-report.json` → `lab-report.html`). */
export function htmlReportPath(jsonPath: string): string {
  return `${jsonPath.replace(/\.json$/i, "")}.html`;
}

export function runSummary(report: LabReport): RunSummary {
  return { verdict: report.verdict, durationSeconds: report.durationSeconds, scenarios: report.scenarios };
}

export async function writeHtmlReport(path: string, report: LabReport, samples: Sample[]): Promise<void> {
  const page = await offlinePage({
    startedAt: report.startedAt,
    mode: "report",
    samples,
    events: report.events.map(timelineEvent),
    player: PLAYER,
    finished: runSummary(report),
  });
  writeFileSync(path, page);
}

export function summaryTable(results: readonly ScenarioResult[]): string {
  const table = new Table({
    head: [
      "scenario",
      "verdict",
      "sent",
      "delivered",
      "clean lost",
      "attacks in",
      "drops by reason",
      "latency p50/p99 ms",
    ],
    wordWrap: true,
    colWidths: [16, 9, 9, 11, 12, 12, 38, 20],
  });
  for (const r of results) {
    const drops = Object.entries(r.packets.droppedByReason)
      .map(([reason, n]) => `${reason} ${n}`)
      .join(", ");
    table.push([
      r.name,
      r.verdict === "pass"
        ? pc.green("PASS")
        : r.verdict === "skipped"
          ? pc.yellow("SKIPPED")
          : pc.red("FAIL"),
      r.packets.sent,
      r.packets.delivered,
      r.packets.cleanLost,
      `${r.packets.attackDelivered}/${r.packets.attackSent}`,
      drops || "-",
      `${r.addedLatencyMs.p50} / ${r.addedLatencyMs.p99}`,
    ]);
  }
  const lines = [table.toString()];
  for (const r of results) for (const failure of r.failures) lines.push(pc.red(`  ✗ ${r.name}: ${failure}`));
  return lines.join("\n");
}
