/**
 * What a person watches while the lab runs: per appliance its health (as the emulator sees it),
 * forwarded packets per second, flows and drops by reason; the current scenario's progress; the
 * latest events. Redrawn in place on a terminal; on a pipe (CI), a plain line every few seconds.
 */
import pc from "picocolors";
import { PrometheusMetric } from "../../../contracts/appliance-metrics.ts";
import { byLabel, nonZero, sum } from "../appliances/prometheus.ts";
import type { Lab } from "../lab.ts";

export class LiveView {
  private readonly lab: Lab;
  private readonly tty: boolean;
  private timer: NodeJS.Timeout | null = null;
  private scenario = "";
  private index = 0;
  private total = 0;
  private fraction = 0;
  private note = "";
  private lines = 0;
  private lastForwarded: number[] = [];
  private lastAt = 0;
  private rows: string[] = [];
  private lastPlain = 0;

  constructor(lab: Lab, tty: boolean) {
    this.lab = lab;
    this.tty = tty;
  }

  start(): void {
    this.timer = setInterval(() => void this.refresh(), this.tty ? 500 : 1000);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.tty) this.erase();
  }

  setScenario(name: string, index: number, total: number): void {
    this.scenario = name;
    this.index = index;
    this.total = total;
    this.fraction = 0;
    this.note = "";
    if (!this.tty) process.stdout.write(`[${index}/${total}] ${name}\n`);
  }

  progress(fraction: number, note?: string): void {
    this.fraction = fraction;
    if (note !== undefined) this.note = note;
  }

  private erase(): void {
    if (this.lines > 0) process.stdout.write(`\x1b[${this.lines}A\x1b[0J`);
    this.lines = 0;
  }

  private async refresh(): Promise<void> {
    const now = this.lab.now();
    const seconds = this.lastAt ? (now - this.lastAt) / 1000 : 0;
    this.lastAt = now;
    const rows: string[] = [];
    for (const appliance of this.lab.fleet.appliances) {
      const samples = await this.lab.fleet.metrics(appliance.index);
      const forwarded = sum(samples, PrometheusMetric.packetsForwarded);
      const pps =
        seconds > 0 && this.lastForwarded[appliance.index] !== undefined
          ? (forwarded - this.lastForwarded[appliance.index]) / seconds
          : 0;
      this.lastForwarded[appliance.index] = forwarded;
      const target = this.lab.emulator.targets[appliance.index];
      const drops = Object.entries(nonZero(byLabel(samples, PrometheusMetric.packetsDropped, "reason")))
        .map(([reason, value]) => `${reason} ${value}`)
        .join(", ");
      const state =
        target.state === "healthy"
          ? pc.green(target.state)
          : target.state === "draining"
            ? pc.yellow(target.state)
            : pc.red(target.state);
      rows.push(
        `  appliance ${appliance.index + 1} ${appliance.address.padEnd(11)} ${state.padEnd(22)} ${Math.round(Math.max(0, pps)).toString().padStart(6)} pkt/s  ${String(target.flows).padStart(3)} flows  ${appliance.process ? "" : pc.red("(down) ")}${drops ? pc.dim(`drops: ${drops}`) : ""}`,
      );
    }
    this.rows = rows;
    if (this.tty) this.draw();
    else if (now - this.lastPlain > 3000) {
      this.lastPlain = now;
      process.stdout.write(
        `  ${this.scenario} ${Math.round(this.fraction * 100)}%${this.note ? ` (${this.note})` : ""}\n`,
      );
    }
  }

  private draw(): void {
    const width = 30;
    const filled = Math.round(this.fraction * width);
    const bar = `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
    const events = this.lab.events
      .slice(-4)
      .map((e) => pc.dim(`  ${e.at.toFixed(1).padStart(6)} s  ${e.message}`));
    const out = [
      pc.bold(`Stream Intelligence lab  ·  scenario ${this.index}/${this.total}: ${this.scenario}`),
      `  ${bar} ${Math.round(this.fraction * 100)}% ${this.note}`,
      ...this.rows,
      ...events,
    ];
    this.erase();
    process.stdout.write(`${out.join("\n")}\n`);
    this.lines = out.length;
  }
}
