/**
 * CloudWatch Embedded Metric Format lines (namespace StreamIntel/Appliance) written to stdout on an
 * interval; the CloudWatch agent turns them into metrics. Values are deltas over the interval, except
 * gauges (active flows) and the stall flag, which is 1 if any check during the interval saw a stall.
 */
import { EMF_NAMESPACE, EmfDimension, EmfMetric } from "../../contracts/appliance-metrics.ts";
import { Counter, IoBackendCode, PROCESSING_BUCKETS } from "../dataplane/counters.ts";
import type { CounterView } from "./counter-view.ts";

export interface EmfSnapshot {
  received: number;
  forwarded: number;
  dropped: number;
  bytes: number;
  alerts: number;
  policyFailures: number;
  socketDrops: number;
  buckets: number[];
  /** Receive loops on the dgram fallback right now. */
  dgramLoops: number;
}

export function snapshot(counters: CounterView, policyFailures: number, socketDrops: number): EmfSnapshot {
  const { dropped, alerts } = counters.allDropsAndAlerts();
  return {
    received: counters.total(Counter.received),
    forwarded: counters.total(Counter.forwarded),
    dropped,
    bytes: counters.total(Counter.bytesReceived),
    alerts,
    policyFailures,
    socketDrops,
    buckets: counters.buckets(),
    dgramLoops: counters.loops(IoBackendCode.dgram),
  };
}

/** Upper bound (µs) of the bucket holding the 99th percentile of the packets between two snapshots. */
export function p99Micros(before: number[], after: number[]): number {
  const counts = after.map((v, i) => v - (before[i] ?? 0));
  const n = counts.reduce((a, b) => a + b, 0);
  if (n === 0) return 0;
  let seen = 0;
  for (let b = 0; b < counts.length; b++) {
    seen += counts[b];
    if (seen >= 0.99 * n) return b < PROCESSING_BUCKETS.length ? PROCESSING_BUCKETS[b] * 1e6 : 1e5;
  }
  return 0;
}

export function emfLine(
  now: number,
  dimensions: { stage: string; instanceId: string },
  before: EmfSnapshot,
  after: EmfSnapshot,
  activeFlows: number,
  stalled: boolean,
): string {
  const metrics: [string, string, number][] = [
    [EmfMetric.packetsReceived, "Count", after.received - before.received],
    [EmfMetric.packetsForwarded, "Count", after.forwarded - before.forwarded],
    [EmfMetric.packetsDropped, "Count", after.dropped - before.dropped],
    [EmfMetric.bytesReceived, "Bytes", after.bytes - before.bytes],
    [EmfMetric.alerts, "Count", after.alerts - before.alerts],
    [EmfMetric.policyReloadFailures, "Count", after.policyFailures - before.policyFailures],
    [EmfMetric.socketReceiveDrops, "Count", after.socketDrops - before.socketDrops],
    [EmfMetric.activeFlows, "Count", activeFlows],
    [EmfMetric.forwardingStalled, "Count", stalled ? 1 : 0],
    [EmfMetric.processingP99Micros, "Microseconds", p99Micros(before.buckets, after.buckets)],
    [EmfMetric.ioBackendFallback, "Count", after.dgramLoops],
  ];
  const document: Record<string, unknown> = {
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [
        {
          Namespace: EMF_NAMESPACE,
          Dimensions: [[EmfDimension.stage], [EmfDimension.stage, EmfDimension.instanceId]],
          Metrics: metrics.map(([Name, Unit]) => ({ Name, Unit })),
        },
      ],
    },
    [EmfDimension.stage]: dimensions.stage,
    [EmfDimension.instanceId]: dimensions.instanceId,
  };
  for (const [name, , value] of metrics) document[name] = value;
  return JSON.stringify(document);
}
