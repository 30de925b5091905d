/**
 * The run as a time series, one sample a second: per appliance (health as the emulator sees it;
 * forwarded packets per second, flows in its table, drops per second by reason from its /metrics), per stream
 * (loss, added latency p99 over the second, TS continuity at the sink), the contributors and the
 * whitelist. The dashboard draws it live and lab-report.html draws the whole run from it.
 */
import { PrometheusMetric } from "../../../contracts/appliance-metrics.ts";
import { byLabel, type Sample as MetricSample, sum } from "../appliances/prometheus.ts";
import type { Lab, LabEvent } from "../lab.ts";
import type { Pipeline } from "../pipeline/pipeline.ts";
import { percentiles, type StreamStats } from "../sink/sink.ts";
import type {
  ApplianceSample,
  EventKind,
  Sample,
  ScenarioStatus,
  StreamSample,
  TimelineEvent,
} from "./protocol.ts";

/** Keeps a quarter of an hour of samples (a default run is about 80). */
const MAX_SAMPLES = 900;

const KINDS: [RegExp, EventKind][] = [
  [/^operator\b/i, "operator"],
  [/^scenario\b/i, "scenario"],
  [/whitelist|rotat/i, "rotation"],
  [/attack|flood|hijack/i, "attack"],
  [/deregist|SIGTERM|drain/i, "drain"],
  [/killed|unhealthy|SIGKILL|moved off/i, "failover"],
  [/healthy|registered|replac|restart/i, "recovery"],
  [/on air|off air|packager|picture/i, "pipeline"],
];

/** What kind of moment an event message records, for the timeline's colours and the chart marks. */
export function eventKind(message: string): EventKind {
  return KINDS.find(([pattern]) => pattern.test(message))?.[1] ?? "info";
}

export function timelineEvent(event: LabEvent): TimelineEvent {
  return { at: Math.round(event.at * 10) / 10, message: event.message, kind: eventKind(event.message) };
}

function dropsByReason(samples: MetricSample[]): Record<string, number> {
  return byLabel(samples, PrometheusMetric.packetsDropped, "reason");
}

export class Telemetry {
  readonly samples: Sample[] = [];
  readonly listeners = new Set<(sample: Sample) => void>();
  scenario: ScenarioStatus | null = null;
  private readonly lab: Lab;
  private readonly pipeline: Pipeline | null;
  private timer: NodeJS.Timeout | null = null;
  private last: { at: number; forwarded: number[]; drops: Record<string, number>[] } | null = null;
  /** How many latency samples of each stream were already counted in an earlier second. */
  private readonly latencySeen = new WeakMap<StreamStats, number>();
  private sampling = false;

  constructor(lab: Lab, pipeline: Pipeline | null) {
    this.lab = lab;
    this.pipeline = pipeline;
  }

  start(intervalMs = 1000): void {
    this.timer = setInterval(() => void this.sample(), intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  setScenario(name: string, index: number, total: number): void {
    this.scenario = { name, index, total, fraction: 0, note: "" };
  }

  progress(fraction: number, note?: string): void {
    if (!this.scenario) return;
    this.scenario.fraction = Math.round(fraction * 1000) / 1000;
    if (note !== undefined) this.scenario.note = note;
  }

  /** Takes one sample now (also what the timer does); overlapping calls are skipped. */
  async sample(): Promise<Sample | null> {
    if (this.sampling) return null;
    this.sampling = true;
    try {
      const sample = await this.take();
      this.samples.push(sample);
      if (this.samples.length > MAX_SAMPLES) this.samples.shift();
      for (const listener of this.listeners) listener(sample);
      return sample;
    } finally {
      this.sampling = false;
    }
  }

  private async take(): Promise<Sample> {
    const lab = this.lab;
    const metrics = await Promise.all(lab.fleet.appliances.map((a) => lab.fleet.metrics(a.index)));
    const at = lab.now();
    const forwarded = metrics.map((m) => sum(m, PrometheusMetric.packetsForwarded));
    const drops = metrics.map(dropsByReason);
    const seconds = this.last ? (at - this.last.at) / 1000 : 0;
    // A counter that went backwards belongs to a restarted appliance: its whole value is new.
    const rate = (now: number, before: number | undefined) =>
      seconds > 0 && before !== undefined ? Math.round((now >= before ? now - before : now) / seconds) : 0;
    const appliances: ApplianceSample[] = lab.fleet.appliances.map((a, i) => {
      const target = lab.emulator.targets[i];
      const dropsPerSecond: Record<string, number> = {};
      for (const [reason, total] of Object.entries(drops[i])) {
        const perSecond = rate(total, this.last?.drops[i]?.[reason] ?? (this.last ? 0 : undefined));
        if (perSecond > 0) dropsPerSecond[reason] = perSecond;
      }
      return {
        number: i + 1,
        address: a.address,
        state: target.state,
        up: a.process !== null,
        forwardedPerSecond: a.process ? rate(forwarded[i], this.last?.forwarded[i]) : 0,
        flows: a.process ? sum(metrics[i], PrometheusMetric.activeFlows) : 0,
        dropsPerSecond,
        dropsTotal: Object.fromEntries(Object.entries(drops[i]).filter(([, n]) => n > 0)),
      };
    });
    this.last = { at, forwarded, drops };
    const pipelineSources = new Set(this.pipeline?.mediaConnect.sessions.map((s) => s.source) ?? []);
    const streams: StreamSample[] = [];
    for (const source of lab.activeSources()) {
      const stats = source.stats;
      if (!stats) continue;
      const seen = this.latencySeen.get(stats) ?? 0;
      const fresh = stats.latencies.slice(seen);
      this.latencySeen.set(stats, stats.latencies.length);
      streams.push({
        name: stats.name,
        kind: pipelineSources.has(source) ? "pipeline" : "scenario",
        appliance: source.flow.target >= 0 ? source.flow.target + 1 : null,
        sent: source.sent,
        received: stats.received,
        lost: stats.lost,
        p99Ms: fresh.length > 0 ? percentiles(fresh).p99 : null,
        tsContinuityErrors: stats.tsContinuityErrors,
      });
    }
    return {
      t: Math.round(lab.elapsedSeconds() * 10) / 10,
      scenario: this.scenario ? { ...this.scenario } : null,
      appliances,
      streams,
      contributors: this.pipeline?.view() ?? [],
      whitelist:
        this.pipeline?.mediaConnect.sources.map((s) => ({ name: s.name, cidr: s.cidr ?? null })) ?? [],
    };
  }
}
