/**
 * CloudWatch Embedded Metric Format lines (namespace StreamIntel/Appliance) written to stdout on an
 * interval; the CloudWatch agent turns them into metrics. Values are deltas over the interval, except
 * gauges (active flows) and the stall flag, which is 1 if any check during the interval saw a stall.
 */
import { DROP_REASONS, EMF_NAMESPACE, EmfDimension, EmfMetric } from "../../contracts/appliance-metrics.ts";
import {
  ALERT_BASE,
  Counter,
  DROP_BASE,
  HISTOGRAM_BASE,
  IoBackendCode,
  PROCESSING_BUCKETS,
  SLOTS_PER_WORKER,
} from "../dataplane/counters.ts";
import { total } from "./metrics.ts";

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

export function snapshot(
  view: Float64Array,
  workers: number,
  policyFailures: number,
  socketDrops: number,
): EmfSnapshot {
  let dropped = 0;
  let alerts = 0;
  for (let i = 0; i < DROP_REASONS.length; i++) {
    dropped += total(view, workers, DROP_BASE + i);
    alerts += total(view, workers, ALERT_BASE + i);
  }
  const buckets: number[] = [];
  for (let b = 0; b <= PROCESSING_BUCKETS.length; b++) buckets.push(total(view, workers, HISTOGRAM_BASE + b));
  let dgramLoops = 0;
  for (let w = 0; w < workers; w++)
    if (view[w * SLOTS_PER_WORKER + Counter.ioBackend] === IoBackendCode.dgram) dgramLoops++;
  return {
    received: total(view, workers, Counter.received),
    forwarded: total(view, workers, Counter.forwarded),
    dropped,
    bytes: total(view, workers, Counter.bytesReceived),
    alerts,
    policyFailures,
    socketDrops,
    buckets,
    dgramLoops,
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
