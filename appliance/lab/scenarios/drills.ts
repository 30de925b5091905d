/**
 * Fault drills: each breaks one thing the way production breaks, measures packets lost, time to
 * detect and time to recover, and fails when a bound is broken.
 */
import { existsSync, renameSync } from "node:fs";
import { PrometheusMetric } from "../../../contracts/appliance-metrics.ts";
import { streamDestination, streamSource } from "../addressing.ts";
import { sum } from "../appliances/prometheus.ts";
import type { Flow } from "../gwlb/emulator.ts";
import type { Lab } from "../lab.ts";
import { SyntheticStream } from "../media/synthetic-stream.ts";
import { type FailoverDetails, failover } from "./failover.ts";
import { defineCleanScenario, type Scenario } from "./scenario.ts";

const metricOf = async (lab: Lab, index: number, name: string) => sum(await lab.fleet.metrics(index), name);

/** kill -9 at peak load: the failover scenario with the seed's largest stream count. */
export const killAtPeak: Scenario<FailoverDetails> = {
  name: "kill-peak",
  description:
    "kill -9 of an appliance at peak load (50 streams): flows move, loss within the detection window",
  async run(lab, progress) {
    const streams = lab.options.streams;
    lab.options.streams = 50;
    try {
      const r = await failover.run(lab, progress);
      return { ...r, name: killAtPeak.name, description: killAtPeak.description };
    } finally {
      lab.options.streams = streams;
    }
  },
};

/** Percent of one core the starved appliance is capped at. */
const STARVED_CPU_PERCENT = 3;

export interface SlowApplianceDetails {
  skipped?: string;
  appliance: string;
  timeToDetectMs: number | null;
  timeToRecoverMs: number | null;
  healthChecksFailedWhileSlow: boolean;
  packetsLost: number;
}

export const slowAppliance = defineCleanScenario<SlowApplianceDetails>({
  name: "slow-appliance",
  description: `an appliance starved of CPU (cgroup cap at ${STARVED_CPU_PERCENT}% of a core) that still answers health checks: its stall metric must trip, and clear once the cap is lifted`,
  seconds: { normal: 15, quick: 8 },
  async run({ lab, sources, duration, play, gaveUp }) {
    const victim = lab.emulator.busiestTarget(sources.map((s) => s.flow));
    // Eight more streams on the victim, so a starved appliance is sure to fall behind its traffic.
    const extra = await lab.cleanStreams(8, duration / 1000, "extra");
    for (const source of extra) lab.emulator.pin(source.flow, victim.index);
    sources.push(...extra);
    const stalled = async () => metricOf(lab, victim.index, PrometheusMetric.forwardingStalled);
    let limited = false;
    let cappedAt = 0;
    let detectedAt = 0;
    let liftedAt = 0;
    let recoveredAt = 0;
    let healthFailedWhileSlow = false;
    const watch = async () => {
      const deadline = lab.now() + 6000;
      while (lab.now() < deadline && !detectedAt) {
        if ((await stalled()) === 1) detectedAt = lab.now();
        if (victim.state !== "healthy") healthFailedWhileSlow = true;
        await lab.sleep(100);
      }
    };
    await play([
      [
        0.2,
        async () => {
          limited = lab.fleet.limitCpu(victim.index, STARVED_CPU_PERCENT);
          cappedAt = lab.now();
          lab.event(
            limited
              ? `appliance ${victim.index + 1}: CPU capped at ${STARVED_CPU_PERCENT}%`
              : "cannot cap CPU here (no writable cgroup)",
          );
          if (limited) await watch();
        },
      ],
      [
        0.7,
        async () => {
          if (!limited) return;
          lab.fleet.limitCpu(victim.index, null);
          liftedAt = lab.now();
          lab.event(`appliance ${victim.index + 1}: CPU cap lifted`);
          await lab
            .waitFor(async () => (await stalled()) === 0, "stall cleared", 8000)
            .then(() => {
              recoveredAt = lab.now();
            })
            .catch(gaveUp("the stall metric to clear"));
        },
      ],
    ]);
    return {
      verdict: ({ totals, failures }) => {
        if (limited) {
          if (!detectedAt) failures.push("the stall metric never tripped while the appliance was starved");
          if (!recoveredAt) failures.push("the stall metric did not clear after the cap was lifted");
        }
        return {
          skipped: !limited,
          details: {
            skipped: limited
              ? undefined
              : "no writable cgroup on this machine: the drill needs root and the cpu controller",
            appliance: `appliance ${victim.index + 1}`,
            timeToDetectMs: detectedAt ? Math.round(detectedAt - cappedAt) : null,
            timeToRecoverMs: recoveredAt ? Math.round(recoveredAt - liftedAt) : null,
            healthChecksFailedWhileSlow: healthFailedWhileSlow,
            packetsLost: totals.lost,
          },
        };
      },
    };
  },
});

export interface PolicySourceDownDetails {
  timeToDetectMs: number | null;
  outageMs: number;
  note: string;
}

export const policySourceDown = defineCleanScenario<PolicySourceDownDetails>({
  name: "policy-source-down",
  description:
    "the policy source disappears, then returns: the last good policy keeps serving, the failures are counted, nothing is lost",
  seconds: { normal: 12, quick: 6 },
  cleanOnly: true,
  async run({ lab, play, gaveUp }) {
    const reloadFailures = () =>
      Promise.all(
        lab.fleet.appliances.map((a) => metricOf(lab, a.index, PrometheusMetric.policyReloadFailures)),
      );
    const failuresBefore = await reloadFailures();
    const away = `${lab.policyFile}.unavailable`;
    let removedAt = 0;
    let detectedAt = 0;
    let restoredAt = 0;
    let unhealthyDuringOutage = false;
    await play([
      [
        0.2,
        async () => {
          renameSync(lab.policyFile, away);
          removedAt = lab.now();
          lab.event("policy source removed");
          await lab
            .waitFor(
              async () => (await reloadFailures()).every((n, i) => n > failuresBefore[i]),
              "failures counted",
              5000,
            )
            .then(() => {
              detectedAt = lab.now();
            })
            .catch(gaveUp("the reload failures to be counted"));
        },
      ],
      [
        0.5,
        () => {
          unhealthyDuringOutage = lab.emulator.healthyCount() < lab.options.appliances;
        },
      ],
      [
        0.7,
        () => {
          renameSync(away, lab.policyFile);
          restoredAt = lab.now();
          lab.event("policy source back");
        },
      ],
    ]);
    if (existsSync(away)) renameSync(away, lab.policyFile);
    return {
      verdict: ({ totals, failures }) => {
        if (totals.lost !== 0) failures.push(`${totals.lost} packets lost while the policy source was away`);
        if (!detectedAt)
          failures.push("the appliances did not count the unreadable source as a reload failure");
        if (unhealthyDuringOutage)
          failures.push("an appliance went unhealthy because its policy source was away");
        return {
          details: {
            timeToDetectMs: detectedAt ? Math.round(detectedAt - removedAt) : null,
            outageMs: Math.round(restoredAt - removedAt),
            note: "SSM errors take the same path (PolicyStore.sourceFailed); their backoff is unit-tested against a mocked SSM client",
          },
        };
      },
    };
  },
});

export interface BurstDetails {
  appliance: string;
  burstDatagrams: number;
  socketReceiveDrops: number;
  burstReadWhole: boolean;
  stallMetricTripped: boolean;
  cleanPacketsLost: number;
  timeToRecoverMs: number | null;
}

const BURST_FLOWS = 40;
const BURST_ROUNDS = 1000;

/** BURST_FLOWS flows of their own, pinned to target `index`, each with an 8 Mbit/s stream. */
async function burstFlows(lab: Lab, index: number): Promise<{ flow: Flow; stream: SyntheticStream }[]> {
  const flows = [];
  for (let i = 0; i < BURST_FLOWS; i++) {
    const flow = await lab.flow({
      src: streamSource(60 + i),
      dst: streamDestination(60 + i).address,
      dstPort: 5060 + i,
      label: `burst-${i}`,
      attack: false,
    });
    lab.emulator.pin(flow, index);
    flows.push({ flow, stream: new SyntheticStream({ bitrate: 8_000_000, ssrc: 0xb000 + i }) });
  }
  return flows;
}

export const burst = defineCleanScenario<BurstDetails>({
  name: "burst",
  description:
    "a burst far beyond the socket buffer hits one appliance: the kernel's drops are counted, the stall metric trips, and clean traffic recovers",
  seconds: { normal: 12, quick: 6 },
  async run({ lab, sources, play, gaveUp }) {
    const target = lab.emulator.busiestTarget(sources.map((s) => s.flow));
    const metric = (name: string) => metricOf(lab, target.index, name);
    const socketDropsBefore = await metric(PrometheusMetric.socketDrops);
    const readBefore = await metric(PrometheusMetric.packetsReceived);
    let readAfterBurst = 0;
    let burstEndedAt = 0;
    let recoveredAt = 0;
    let sentInBurst = 0;
    let stallSeen = false;
    const onTarget = sources.filter((s) => s.flow.target === target.index);
    await play([
      [
        0.3,
        async () => {
          // 40,000 datagrams (~56 MB) in one go over 40 flows pinned to the target, far more than its
          // receive buffer holds, from a process that does nothing else meanwhile.
          const flows = await burstFlows(lab, target.index);
          for (let n = 0; n < BURST_ROUNDS; n++)
            for (const { flow, stream } of flows) lab.emulator.send(flow, stream.next(lab.now()));
          sentInBurst = BURST_FLOWS * BURST_ROUNDS;
          burstEndedAt = lab.now();
          lab.event(`burst of ${sentInBurst} datagrams sent to appliance ${target.index + 1}`);
          const receivedAt = onTarget.map((s) => s.stats!.received);
          await lab
            .waitFor(
              async () => {
                if ((await metric(PrometheusMetric.forwardingStalled)) === 1) stallSeen = true;
                return onTarget.every((s, i) => s.stats!.received > receivedAt[i] + 5);
              },
              "clean traffic back",
              5000,
            )
            .then(() => {
              recoveredAt = lab.now();
            })
            .catch(gaveUp("clean traffic to come back after the burst"));
          readAfterBurst = await metric(PrometheusMetric.packetsReceived);
        },
      ],
    ]);
    return {
      verdict: async ({ totals, drops, failures }) => {
        const socketDrops = (await metric(PrometheusMetric.socketDrops)) - socketDropsBefore;
        // A receive loop fast enough to read the whole burst (the native backend on a quiet host) leaves
        // the kernel nothing to drop: then every burst datagram must have been read instead.
        const absorbed = readAfterBurst - readBefore >= sentInBurst;
        if (socketDrops <= 0 && !absorbed)
          failures.push("the kernel's receive-buffer drops were not counted");
        if (!recoveredAt) failures.push("clean traffic on the burst's appliance did not recover within 5 s");
        if (recoveredAt && recoveredAt - burstEndedAt > 2000)
          failures.push(`recovery took ${Math.round(recoveredAt - burstEndedAt)} ms (bound 2000 ms)`);
        return {
          drops: { ...drops, socket_receive_drops: socketDrops },
          details: {
            appliance: `appliance ${target.index + 1}`,
            burstDatagrams: sentInBurst,
            socketReceiveDrops: socketDrops,
            burstReadWhole: absorbed,
            stallMetricTripped: stallSeen,
            cleanPacketsLost: totals.lost,
            timeToRecoverMs: recoveredAt ? Math.round(recoveredAt - burstEndedAt) : null,
          },
        };
      },
    };
  },
});

export const DRILLS: readonly Scenario[] = [killAtPeak, slowAppliance, policySourceDown, burst];
