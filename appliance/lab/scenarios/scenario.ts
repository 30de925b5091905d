/**
 * What every scenario is and reports (the shape of one entry of lab-report.json), and the skeleton
 * they share: clean streams at the lab's load for the scenario's duration, whatever the scenario adds
 * and breaks meanwhile, then the streams' totals, the appliances' drops over the run and the verdict.
 */
import type { Lab } from "../lab.ts";
import { percentiles } from "../sink/sink.ts";
import type { Source } from "../sources.ts";

/** What every result's details carry, whatever the scenario. */
export interface SinkDetails {
  tsContinuityErrorsAtSink: number;
  duplicates: number;
  reordered: number;
  corruptedReturns: number;
}

export interface ScenarioResult<D extends object = object> {
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
  details: SinkDetails & D;
}

export type Progress = (fraction: number, note?: string) => void;

export interface Scenario<D extends object = object> {
  name: string;
  description: string;
  run(lab: Lab, progress: Progress): Promise<ScenarioResult<D>>;
}

/** A callback at a fraction of the scenario's duration. */
export type Moment = [fraction: number, action: () => Promise<void> | void];

/** Lets traffic run for `ms`, reporting progress; `at` callbacks fire once at their fraction. */
async function runFor(lab: Lab, ms: number, progress: Progress, at: Moment[] = []): Promise<void> {
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

export interface CleanTotals {
  sent: number;
  delivered: number;
  lost: number;
  tsErrors: number;
  duplicates: number;
  reordered: number;
  latency: ScenarioResult["addedLatencyMs"];
  perStream: { name: string; sent: number; delivered: number; lost: number; movedTimes: number }[];
}

/** Stops the clean sources, lets in-flight packets land, and totals them. */
async function finishClean(lab: Lab, sources: readonly Source[]): Promise<CleanTotals> {
  lab.removeSources(sources);
  await lab.sleep(300);
  lab.forget(sources);
  let sent = 0;
  let delivered = 0;
  let tsErrors = 0;
  let duplicates = 0;
  let reordered = 0;
  const latencies: number[] = [];
  const perStream: CleanTotals["perStream"] = [];
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

/** Where a scenario stands while its traffic runs. */
export interface CleanRun {
  readonly lab: Lab;
  /** The clean streams (a scenario may push more clean streams of its own: they are totalled too). */
  readonly sources: Source[];
  /** Of the traffic, in ms. */
  readonly duration: number;
  /** lab.now() when the scenario began. */
  readonly started: number;
  /** Sends `source` beside the clean streams until the traffic ends (attacks, extra contributors). */
  send<S extends Source>(source: S): S;
  /** Runs the traffic for the scenario's duration, firing `at` on the way. */
  play(at?: Moment[]): Promise<void>;
  /** A watcher started during the traffic gave up: the run goes on, the event log says so. */
  gaveUp(what: string): (error: unknown) => void;
}

/** What the clean streams did and what the appliances dropped over the run. */
export interface CleanEnd {
  totals: CleanTotals;
  drops: Record<string, number>;
  /** Failed expectations so far; the verdict pushes its own. */
  failures: string[];
}

export interface Verdict<D extends object> {
  details: D;
  attackSent?: number;
  attackDelivered?: number;
  /** What the report shows as dropped, when it is more than the drop counters' delta. */
  drops?: Record<string, number>;
  /** The machine cannot stage the fault: the verdict is "skipped", whatever failed. */
  skipped?: boolean;
  /** Puts the lab back (a stopped appliance replaced) after the verdict, with a progress note. */
  restore?: { note: string; action: () => Promise<void> };
}

export interface CleanScenarioSpec<D extends object> {
  name: string;
  description: string;
  /** Seconds of traffic in a normal run and with --quick. */
  seconds: { normal: number; quick: number };
  /** Only clean traffic is sent: any drop the appliances count fails the scenario. */
  cleanOnly?: boolean;
  /**
   * Stages the scenario and plays its traffic; returns how to judge it once every source has stopped
   * and its last packets have landed.
   */
  run(run: CleanRun): Promise<{
    /** After the totals, before the drop counters are read (e.g. the original policy written back). */
    settle?: () => Promise<void>;
    verdict: (end: CleanEnd) => Verdict<D> | Promise<Verdict<D>>;
  }>;
}

function durationMs(lab: Lab, normalSeconds: number, quickSeconds: number): number {
  return (lab.options.quick ? quickSeconds : normalSeconds) * 1000;
}

/** A scenario on the shared skeleton: clean streams throughout, then totals, drops and the verdict. */
export function defineCleanScenario<D extends object>(spec: CleanScenarioSpec<D>): Scenario<D> {
  const scenario: Scenario<D> = {
    name: spec.name,
    description: spec.description,
    async run(lab: Lab, progress: Progress) {
      const started = lab.now();
      const before = await lab.dropsByReason();
      const duration = durationMs(lab, spec.seconds.normal, spec.seconds.quick);
      const sources = await lab.cleanStreams(lab.options.streams, duration / 1000);
      const extra: Source[] = [];
      const run: CleanRun = {
        lab,
        sources,
        duration,
        started,
        send(source) {
          extra.push(source);
          lab.addSource(source);
          return source;
        },
        play: (at) => runFor(lab, duration, progress, at),
        gaveUp: (what) => (error) => lab.event(`${spec.name}: gave up waiting for ${what}: ${String(error)}`),
      };
      const { settle, verdict } = await spec.run(run);
      lab.removeSources(extra);
      const totals = await finishClean(lab, sources);
      lab.onDeliver = null;
      await settle?.();
      const drops = diffDrops(before, await lab.dropsByReason());
      const failures: string[] = [];
      const judged = await verdict({ totals, drops, failures });
      if (spec.cleanOnly && Object.keys(drops).length > 0)
        failures.push(`appliances dropped clean traffic: ${JSON.stringify(drops)}`);
      if (judged.restore) {
        progress(1, judged.restore.note);
        await judged.restore.action();
      }
      const out = result(scenario, started, lab, {
        clean: totals,
        attackSent: judged.attackSent,
        attackDelivered: judged.attackDelivered,
        drops: judged.drops ?? drops,
        failures,
        details: judged.details,
      });
      return judged.skipped ? { ...out, verdict: "skipped" } : out;
    },
  };
  return scenario;
}

function result<D extends object>(
  scenario: Pick<Scenario, "name" | "description">,
  startedAt: number,
  lab: Lab,
  parts: {
    clean: CleanTotals;
    attackSent?: number;
    attackDelivered?: number;
    drops: Record<string, number>;
    failures: string[];
    details: D;
  },
): ScenarioResult<D> {
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
