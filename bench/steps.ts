/**
 * Steps and sweeps: one step offers one load to one running system for a few seconds and measures
 * what came back (rate, loss, one-way latency, byte-for-byte mismatches) and what it cost the system
 * (CPU per datagram read); a sweep is a list of steps.
 */
import { readdirSync, readFileSync } from "node:fs";
import { socketStats } from "../appliance/control/socket-stats.ts";
import { GENEVE_PORT } from "../contracts/gwlb.ts";
import { FLOWS, LOSSLESS, log, OFFERED_IN_FULL } from "./config.ts";
import type { Bench, Running } from "./contestants.ts";
import type { GeneratorReport } from "./generator.ts";

export interface Step {
  offered: number;
  sent: number;
  received: number;
  /** Returns that were not, byte for byte, a datagram the generator sent (should be 0). */
  mismatched: number;
  /** Returns of datagrams an earlier step sent, held up in the system under test (not in `received`). */
  late: number;
  sentPerSecond: number;
  deliveredPerSecond: number;
  loss: number;
  latencyMicros: GeneratorReport["latencyMicros"];
  /**
   * CPU the system under test spent per datagram it read (µs): robust where rates are not, on a shared
   * host, since a time slice lost to another process is not counted.
   */
  cpuMicrosPerPacket: number;
}

/**
 * CPU time (ns) every thread of `pid` has run, kernel work in its system calls included. From
 * /proc/<pid>/task/<tid>/schedstat.
 */
export function cpuNanos(pid: number): number {
  let total = 0;
  try {
    for (const task of readdirSync(`/proc/${pid}/task`))
      total += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
  } catch {
    return Number.NaN;
  }
  return total;
}

/** Datagrams the system's GENEVE socket dropped (full receive buffer), seen from its own namespace. */
const socketDrops = (running: Running) =>
  socketStats(running.site.address, GENEVE_PORT, [`/proc/${running.pid}/net/udp`])?.drops ?? 0;

export interface StepOptions {
  rate: number;
  flows?: number;
  tsPackets?: number;
}

export async function step(bench: Bench, running: Running, options: StepOptions): Promise<Step> {
  const { rate, flows = FLOWS, tsPackets = 7 } = options;
  const cpuBefore = cpuNanos(running.pid);
  const dropsBefore = socketDrops(running);
  const report = await bench.generator.run({
    bind: running.site.generator,
    target: running.site.address,
    rate,
    seconds: bench.config.stepSeconds,
    flows,
    tsPackets,
  });
  const cpu = cpuNanos(running.pid) - cpuBefore;
  // What the system under test read: what was sent less what its socket's receive buffer dropped.
  const read = report.sent - (socketDrops(running) - dropsBefore);
  const activeSeconds = report.received > 1 ? (report.lastAt - report.firstAt) / 1e9 : report.seconds;
  return {
    offered: rate,
    sent: report.sent,
    received: report.received,
    mismatched: report.mismatched,
    late: report.late,
    sentPerSecond: report.sent / report.seconds,
    deliveredPerSecond: report.received / Math.max(activeSeconds, report.seconds),
    loss: report.sent ? 1 - report.received / report.sent : 0,
    latencyMicros: report.latencyMicros,
    cpuMicrosPerPacket: read > 0 ? cpu / 1000 / read : Number.NaN,
  };
}

export function describeStep(name: string, s: Step): string {
  const rate = s.offered ? `${(s.offered / 1000).toFixed(0)}k/s` : "max";
  const mismatched = s.mismatched ? `, ${s.mismatched} MISMATCHED` : "";
  return `${name.padEnd(14)} offered ${rate} → sent ${(s.sentPerSecond / 1000).toFixed(1)}k/s, delivered ${(s.deliveredPerSecond / 1000).toFixed(1)}k/s, loss ${(s.loss * 100).toFixed(2)}%, p99 ${s.latencyMicros.p99} µs, CPU ${s.cpuMicrosPerPacket.toFixed(2)} µs/packet${mismatched}`;
}

export async function sweep(
  bench: Bench,
  name: string,
  running: Running,
  rates: number[],
  options: Omit<StepOptions, "rate"> = {},
): Promise<Step[]> {
  const steps: Step[] = [];
  for (const rate of rates) {
    const result = await step(bench, running, { ...options, rate });
    steps.push(result);
    log(describeStep(name, result));
  }
  return steps;
}

export interface Best {
  saturatedPps: number;
  losslessPps: number;
  generatorPps: number;
}

/**
 * Clean rate: the highest delivered rate of a step with ≤ 0.1 % loss that the generator offered in full
 * (a step it could not send at its rate says nothing about the system under test); saturated: what was
 * delivered at the generator's maximum; generator: the most the generator sent in any step.
 */
export function best(steps: Step[]): Best {
  const saturated = steps.find((s) => s.offered === 0) ?? steps[steps.length - 1];
  const lossless = steps
    .filter((s) => s.offered > 0 && s.loss <= LOSSLESS && s.sentPerSecond >= OFFERED_IN_FULL * s.offered)
    .reduce((m, s) => Math.max(m, s.deliveredPerSecond), 0);
  const generator = steps.reduce((m, s) => Math.max(m, s.sentPerSecond), 0);
  return {
    saturatedPps: saturated.deliveredPerSecond,
    losslessPps: Math.round(lossless),
    generatorPps: generator,
  };
}

export const at = (steps: Step[], rate: number) => steps.find((s) => s.offered === rate);
