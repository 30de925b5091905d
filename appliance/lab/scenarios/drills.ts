/**
 * Fault drills: each breaks one thing the way production breaks, measures packets lost, time to
 * detect and time to recover, and fails when a bound is broken.
 */

import { existsSync, renameSync } from "node:fs";
import { PrometheusMetric } from "../../../contracts/appliance-metrics.ts";
import { streamDestination, streamSource } from "../addressing.ts";
import { sum } from "../appliances/fleet.ts";
import type { Lab } from "../lab.ts";
import { SyntheticStream } from "../media/synthetic-stream.ts";
import { failover } from "./failover.ts";
import {
  beginClean,
  diffDrops,
  endClean,
  expectNoDrops,
  finishClean,
  type Progress,
  result,
  runFor,
  type Scenario,
} from "./scenario.ts";

const metricOf = async (lab: Lab, index: number, name: string) => sum(await lab.fleet.metrics(index), name);

/** kill -9 at peak load: the failover scenario with the seed's largest stream count. */
export const killAtPeak: Scenario = {
  name: "kill-peak",
  description:
    "kill -9 of an appliance at peak load (50 streams): flows move, loss within the detection window",
  async run(lab: Lab, progress: Progress) {
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

export const slowAppliance: Scenario = {
  name: "slow-appliance",
  description:
    "an appliance starved of CPU (cgroup cap at 1% of a core) that still answers health checks: its stall metric must trip, and clear once the cap is lifted",
  async run(lab: Lab, progress: Progress) {
    const { started, before, duration, sources } = await beginClean(lab, 15, 8);
    const victim = lab.emulator.targets.reduce((a, b) => (b.flows > a.flows ? b : a));
    // Eight more streams on the victim, so a starved appliance is sure to fall behind its traffic.
    const extra = await lab.cleanStreams(8, duration / 1000, "extra");
    for (const source of extra) {
      lab.emulator.targets[source.flow.target].flows--;
      source.flow.target = victim.index;
      victim.flows++;
    }
    sources.push(...extra);
    let limited = false;
    let cappedAt = 0;
    let detectedAt = 0;
    let liftedAt = 0;
    let recoveredAt = 0;
    let healthFailedWhileSlow = false;
    const watch = async () => {
      const deadline = lab.now() + 6000;
      while (lab.now() < deadline && !detectedAt) {
        if ((await metricOf(lab, victim.index, PrometheusMetric.forwardingStalled)) === 1)
          detectedAt = lab.now();
        if (victim.state !== "healthy") healthFailedWhileSlow = true;
        await lab.sleep(100);
      }
    };
    await runFor(lab, duration, progress, [
      [
        0.2,
        async () => {
          limited = lab.fleet.limitCpu(victim.index, 3);
          cappedAt = lab.now();
          lab.event(
            limited
              ? `appliance ${victim.index + 1}: CPU capped at 3%`
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
            .waitFor(
              async () => (await metricOf(lab, victim.index, PrometheusMetric.forwardingStalled)) === 0,
              "stall cleared",
              8000,
            )
            .then(() => {
              recoveredAt = lab.now();
            })
            .catch(() => {});
        },
      ],
    ]);
    const { totals, drops } = await endClean(lab, sources, before);
    const failures: string[] = [];
    if (limited) {
      if (!detectedAt) failures.push("the stall metric never tripped while the appliance was starved");
      if (!recoveredAt) failures.push("the stall metric did not clear after the cap was lifted");
    }
    const r = result(slowAppliance, started, lab, {
      clean: totals,
      drops,
      failures,
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
    });
    return limited ? r : { ...r, verdict: "skipped" };
  },
};

export const policySourceDown: Scenario = {
  name: "policy-source-down",
  description:
    "the policy source disappears, then returns: the last good policy keeps serving, the failures are counted, nothing is lost",
  async run(lab: Lab, progress: Progress) {
    const { started, before, duration, sources } = await beginClean(lab, 12, 6);
    const failuresBefore = await Promise.all(
      lab.fleet.appliances.map((a) => metricOf(lab, a.index, PrometheusMetric.policyReloadFailures)),
    );
    const away = `${lab.policyFile}.unavailable`;
    let removedAt = 0;
    let detectedAt = 0;
    let restoredAt = 0;
    let unhealthyDuringOutage = false;
    await runFor(lab, duration, progress, [
      [
        0.2,
        async () => {
          renameSync(lab.policyFile, away);
          removedAt = lab.now();
          lab.event("policy source removed");
          await lab
            .waitFor(
              async () => {
                const now = await Promise.all(
                  lab.fleet.appliances.map((a) =>
                    metricOf(lab, a.index, PrometheusMetric.policyReloadFailures),
                  ),
                );
                return now.every((n, i) => n > failuresBefore[i]);
              },
              "failures counted",
              5000,
            )
            .then(() => {
              detectedAt = lab.now();
            })
            .catch(() => {});
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
    const { totals, drops } = await endClean(lab, sources, before);
    const failures: string[] = [];
    if (totals.lost !== 0) failures.push(`${totals.lost} packets lost while the policy source was away`);
    if (!detectedAt) failures.push("the appliances did not count the unreadable source as a reload failure");
    if (unhealthyDuringOutage)
      failures.push("an appliance went unhealthy because its policy source was away");
    expectNoDrops(drops, failures);
    return result(policySourceDown, started, lab, {
      clean: totals,
      drops,
      failures,
      details: {
        timeToDetectMs: detectedAt ? Math.round(detectedAt - removedAt) : null,
        outageMs: Math.round(restoredAt - removedAt),
        note: "SSM errors take the same path (PolicyStore.sourceFailed); their backoff is unit-tested against a mocked SSM client",
      },
    });
  },
};

export const burst: Scenario = {
  name: "burst",
  description:
    "a burst far beyond the socket buffer hits one appliance: the kernel's drops are counted, the stall metric trips, and clean traffic recovers",
  async run(lab: Lab, progress: Progress) {
    const { started, before, duration, sources } = await beginClean(lab, 12, 6);
    const target = lab.emulator.targets.reduce((a, b) => (b.flows > a.flows ? b : a));
    const socketDropsBefore = await metricOf(lab, target.index, PrometheusMetric.socketDrops);
    const readBefore = await metricOf(lab, target.index, PrometheusMetric.packetsReceived);
    let readAfterBurst = 0;
    let burstEndedAt = 0;
    let recoveredAt = 0;
    let sentInBurst = 0;
    let stallSeen = false;
    const onTarget = sources.filter((s) => s.flow.target === target.index);
    await runFor(lab, duration, progress, [
      [
        0.3,
        async () => {
          // 40,000 datagrams (~56 MB) in one go over 40 flows pinned to the target, far more than its
          // receive buffer holds, from a process that does nothing else meanwhile.
          const flows = [];
          for (let i = 0; i < 40; i++) {
            const flow = await lab.flow({
              src: streamSource(60 + i),
              dst: streamDestination(60 + i).address,
              dstPort: 5060 + i,
              label: `burst-${i}`,
              attack: false,
            });
            flow.target = target.index;
            flows.push({ flow, stream: new SyntheticStream({ bitrate: 8_000_000, ssrc: 0xb000 + i }) });
          }
          for (let n = 0; n < 1000; n++)
            for (const { flow, stream } of flows) lab.emulator.send(flow, stream.next(lab.now()));
          sentInBurst = 40_000;
          burstEndedAt = lab.now();
          lab.event(`burst of ${sentInBurst} datagrams sent to appliance ${target.index + 1}`);
          const receivedAt = onTarget.map((s) => s.stats!.received);
          await lab
            .waitFor(
              async () => {
                if ((await metricOf(lab, target.index, PrometheusMetric.forwardingStalled)) === 1)
                  stallSeen = true;
                return onTarget.every((s, i) => s.stats!.received > receivedAt[i] + 5);
              },
              "clean traffic back",
              5000,
            )
            .then(() => {
              recoveredAt = lab.now();
            })
            .catch(() => {});
          readAfterBurst = await metricOf(lab, target.index, PrometheusMetric.packetsReceived);
        },
      ],
    ]);
    const totals = await finishClean(lab, sources);
    const socketDrops = (await metricOf(lab, target.index, PrometheusMetric.socketDrops)) - socketDropsBefore;
    const drops = diffDrops(before, await lab.dropsByReason());
    const failures: string[] = [];
    // A receive loop fast enough to read the whole burst (the native backend on a quiet host) leaves the
    // kernel nothing to drop: then every burst datagram must have been read instead.
    const absorbed = readAfterBurst - readBefore >= sentInBurst;
    if (socketDrops <= 0 && !absorbed) failures.push("the kernel's receive-buffer drops were not counted");
    if (!recoveredAt) failures.push("clean traffic on the burst's appliance did not recover within 5 s");
    if (recoveredAt && recoveredAt - burstEndedAt > 2000)
      failures.push(`recovery took ${Math.round(recoveredAt - burstEndedAt)} ms (bound 2000 ms)`);
    return result(burst, started, lab, {
      clean: totals,
      drops: { ...drops, socket_receive_drops: socketDrops },
      failures,
      details: {
        appliance: `appliance ${target.index + 1}`,
        burstDatagrams: sentInBurst,
        socketReceiveDrops: socketDrops,
        burstReadWhole: absorbed,
        stallMetricTripped: stallSeen,
        cleanPacketsLost: totals.lost,
        timeToRecoverMs: recoveredAt ? Math.round(recoveredAt - burstEndedAt) : null,
      },
    });
  },
};

export const DRILLS: readonly Scenario[] = [killAtPeak, slowAppliance, policySourceDown, burst];
