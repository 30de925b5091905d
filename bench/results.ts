/**
 * bench/results.json: every step of every contestant and the figures derived from them (clean and
 * saturated rates, ratios, latency added at 100k pps, CPU per datagram), with the machine and the
 * command that made them. Written by run.ts, read by table.ts.
 */
import { writeFileSync } from "node:fs";
import os from "node:os";
import type { Config } from "./config.ts";
import { CONTESTANTS, type Contestant } from "./contestants.ts";
import type { FunctionFigures } from "./control-plane.ts";
import type { MemoryPoint, ScalingPoint } from "./flows.ts";
import { at, type Best, best, type Step } from "./steps.ts";
import type { StreamsResult } from "./streams.ts";

export type PerContestant<T> = Record<Contestant, T>;

/** a / b, or NaN when b is 0 (printed as n/a). */
export const ratio = (a: number, b: number) => (b > 0 ? a / b : Number.NaN);
export const gbps = (pps: number, bytes: number) => (pps * bytes * 8) / 1e9;

const each = <T>(f: (who: Contestant) => T) =>
  Object.fromEntries(CONTESTANTS.map((who) => [who, f(who)])) as PerContestant<T>;

/** The main sweep's figures: the same for a full and a quick run. */
export function summarise(steps: PerContestant<Step[]>, datagramBytes: number) {
  const summary = each((who) => best(steps[who]));
  const n = summary.native;
  const ratios = {
    cleanToCEcho: ratio(n.losslessPps, summary.cEcho.losslessPps),
    cleanToNodeEcho: ratio(n.losslessPps, summary.nodeEcho.losslessPps),
    saturatedToCEcho: ratio(n.saturatedPps, summary.cEcho.saturatedPps),
    saturatedToNodeEcho: ratio(n.saturatedPps, summary.nodeEcho.saturatedPps),
    nativeToDgramClean: ratio(n.losslessPps, summary.dgram.losslessPps),
  };
  const p99 = each((who) => at(steps[who], 100_000)?.latencyMicros ?? null);
  const minus = (a: Contestant, b: Contestant) => {
    const [x, y] = [p99[a], p99[b]];
    return x && y ? x.p99 - y.p99 : Number.NaN;
  };
  return {
    summary,
    gbitPerSecond: each((who) => ({
      clean: gbps(summary[who].losslessPps, datagramBytes),
      saturated: gbps(summary[who].saturatedPps, datagramBytes),
    })),
    ratios,
    latencyMicrosAt100k: {
      p99,
      nativeOverCEcho: minus("native", "cEcho"),
      nativeOverNodeEcho: minus("native", "nodeEcho"),
      dgramOverCEcho: minus("dgram", "cEcho"),
    },
    cpuMicrosPerPacketAt100k: each((who) => at(steps[who], 100_000)?.cpuMicrosPerPacket ?? Number.NaN),
    /** Returns that differed from what was sent, over every step of the sweep (should be 0). */
    mismatched: each((who) => steps[who].reduce((m, s) => m + s.mismatched, 0)),
  };
}

export type Summary = ReturnType<typeof summarise>;

export interface Sections {
  /** Every step of every contestant at 1,396 bytes. */
  steps: PerContestant<Step[]>;
  bySize: Record<string, Partial<PerContestant<Step[]>>>;
  workers2: Step[];
  affinity: Step[];
  parallelGc: Step[];
  streams: { largest: number; results: StreamsResult[] } | null;
  memory: MemoryPoint[];
  flowScaling: ScalingPoint[];
  functions: FunctionFigures[];
}

export interface RunContext {
  config: Config;
  /** How the contestants were reached: network namespaces and veth pairs, or loopback (and why). */
  network: string;
  flows: number;
  datagramBytes: number;
  startedAt: Date;
}

export function results(context: RunContext, summary: Summary, sections: Sections) {
  const { config } = context;
  return {
    date: context.startedAt.toISOString(),
    minutes: (Date.now() - context.startedAt.getTime()) / 60_000,
    quick: config.quick,
    command: `npm run bench${config.quick ? " -- --quick" : ""}`,
    network: context.network,
    pinned:
      config.sutCpu !== null ? { systemUnderTest: config.sutCpu, loadGenerator: config.loadCpus } : null,
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.versions.node,
      platform: `${os.platform()} ${os.arch()}`,
      /** Load average (1, 5, 15 min) when the run ended: how shared the machine was. */
      loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))),
    },
    flows: context.flows,
    datagramBytes: context.datagramBytes,
    ...summary,
    ...sections,
  };
}

export type Results = ReturnType<typeof results>;
export type { Best };

export function writeResults(file: URL, value: Results): void {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}
