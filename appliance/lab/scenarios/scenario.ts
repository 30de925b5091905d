/** What every scenario is and reports: the shape of one entry of lab-report.json. */
import type { Lab } from "../lab.ts";
import { percentiles } from "../sink/sink.ts";
import type { Source } from "../sources.ts";

export interface ScenarioResult {
  name: string;
  description: string;
  /** "skipped" when the machine cannot stage the fault (the reason is in details). */
  verdict: "pass" | "fail" | "skipped";
  /** Every expectation that failed, in words; empty when the verdict is pass. */
  failures: string[];
  durationSeconds: number;
  packets: {
    sent: number;
    delivered: number;
    cleanSent: number;
    cleanDelivered: number;
    cleanLost: number;
    attackSent: number;
    attackDelivered: number;
    droppedByReason: Record<string, number>;
  };
  addedLatencyMs: { p50: number; p99: number; p999: number; max: number };
  details: Record<string, unknown>;
}

export type Progress = (fraction: number, note?: string) => void;

export interface Scenario {
  name: string;
  description: string;
  run(lab: Lab, progress: Progress): Promise<ScenarioResult>;
}

export function durationMs(lab: Lab, normalSeconds: number, quickSeconds: number): number {
  return (lab.options.quick ? quickSeconds : normalSeconds) * 1000;
}

/** Lets traffic run for `ms`, reporting progress; `at` callbacks fire once at their fraction. */
export async function runFor(
  lab: Lab,
  ms: number,
  progress: Progress,
  at: [number, () => Promise<void> | void][] = [],
): Promise<void> {
  const start = lab.now();
  const pending = [...at].sort((a, b) => a[0] - b[0]);
  for (;;) {
    const fraction = (lab.now() - start) / ms;
    while (pending.length > 0 && pending[0][0] <= fraction) await pending.shift()![1]();
    progress(Math.min(1, fraction));
    if (fraction >= 1) break;
    await lab.sleep(100);
  }
}

export function diffDrops(
  before: Record<string, number>,
  after: Record<string, number>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [reason, value] of Object.entries(after)) {
    const delta = value - (before[reason] ?? 0);
    if (delta > 0) out[reason] = delta;
  }
  return out;
}

/** Notes the appliances' drop counters, then starts the lab's clean streams for a scenario. */
export async function beginClean(lab: Lab, normalSeconds: number, quickSeconds: number) {
  const started = lab.now();
  const before = await lab.dropsByReason();
  const duration = durationMs(lab, normalSeconds, quickSeconds);
  const sources = await lab.cleanStreams(lab.options.streams, duration / 1000);
  return { started, before, duration, sources };
}

/** Ends the clean streams: their totals and what the appliances dropped meanwhile. */
export async function endClean(lab: Lab, sources: readonly Source[], before: Record<string, number>) {
  const totals = await finishClean(lab, sources);
  const drops = diffDrops(before, await lab.dropsByReason());
  return { totals, drops };
}

/** Stops the clean sources, lets in-flight packets land, and totals them. */
export async function finishClean(lab: Lab, sources: readonly Source[]) {
  lab.removeSources(sources);
  await lab.sleep(300);
  lab.forget(sources);
  let sent = 0;
  let delivered = 0;
  let tsErrors = 0;
  let duplicates = 0;
  let reordered = 0;
  const latencies: number[] = [];
  const perStream: { name: string; sent: number; delivered: number; lost: number; movedTimes: number }[] = [];
  for (const source of sources) {
    const stats = source.stats!;
    sent += source.sent;
    delivered += stats.received;
    tsErrors += stats.tsContinuityErrors;
    duplicates += stats.duplicates;
    reordered += stats.reordered;
    for (const l of stats.latencies) latencies.push(l);
    perStream.push({
      name: stats.name,
      sent: source.sent,
      delivered: stats.received,
      lost: source.sent - stats.received,
      movedTimes: source.flow.moves,
    });
  }
  return {
    sent,
    delivered,
    lost: sent - delivered,
    tsErrors,
    duplicates,
    reordered,
    latency: percentiles(latencies),
    perStream,
  };
}

/** A scenario that sends only clean traffic fails on any drop the appliances counted. */
export function expectNoDrops(drops: Record<string, number>, failures: string[]): void {
  if (Object.keys(drops).length > 0)
    failures.push(`appliances dropped clean traffic: ${JSON.stringify(drops)}`);
}

export function result(
  scenario: Pick<Scenario, "name" | "description">,
  startedAt: number,
  lab: Lab,
  parts: {
    clean: Awaited<ReturnType<typeof finishClean>>;
    attackSent?: number;
    attackDelivered?: number;
    drops: Record<string, number>;
    failures: string[];
    details?: Record<string, unknown>;
  },
): ScenarioResult {
  const attackSent = parts.attackSent ?? 0;
  const attackDelivered = parts.attackDelivered ?? 0;
  return {
    name: scenario.name,
    description: scenario.description,
    verdict: parts.failures.length === 0 ? "pass" : "fail",
    failures: parts.failures,
    durationSeconds: Math.round((lab.now() - startedAt) / 100) / 10,
    packets: {
      sent: parts.clean.sent + attackSent,
      delivered: parts.clean.delivered + attackDelivered,
      cleanSent: parts.clean.sent,
      cleanDelivered: parts.clean.delivered,
      cleanLost: parts.clean.lost,
      attackSent,
      attackDelivered,
      droppedByReason: parts.drops,
    },
    addedLatencyMs: parts.clean.latency,
    details: {
      tsContinuityErrorsAtSink: parts.clean.tsErrors,
      duplicates: parts.clean.duplicates,
      reordered: parts.clean.reordered,
      corruptedReturns: lab.emulator.flows.reduce((n, f) => n + f.corrupted, 0),
      ...parts.details,
    },
  };
}
