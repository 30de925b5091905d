/**
 * Prometheus view of the shared counters. The receive loops only bump numbers in shared memory; this
 * module turns them into prom-client metrics at scrape time, summing over workers unless a series is
 * worth seeing per worker.
 */
import client from "prom-client";
import { ALERT_REASONS, DROP_REASONS, PrometheusMetric } from "../../contracts/appliance-metrics.ts";
import { Counter, IoBackendCode, PROCESSING_BUCKETS, SenderCode } from "../dataplane/counters.ts";
import { CounterView } from "./counter-view.ts";

export interface MetricsSource {
  counters: SharedArrayBuffer;
  workers: number;
  ruleNames(): readonly string[];
  policy(): { reloads: number; failures: number; generation: number };
  health(): { healthy: boolean; draining: boolean; stalledWorkers: number[] };
  socketDrops(): number;
  forwardingStalled(): boolean;
  receiveQueueBytes(): number;
}

type Labels = Record<string, string>;
/** A series' value at scrape time: one number, or one per label set. */
type Reading = number | [Labels, number][];

interface MetricDefinition {
  name: string;
  help: string;
  type: "counter" | "gauge";
  labels?: string[];
  read(): Reading;
}

const flag = (value: boolean) => (value ? 1 : 0);

/** Every series of /metrics but the histogram, in exposition order. */
function definitions(source: MetricsSource, counters: CounterView): MetricDefinition[] {
  return [...trafficSeries(source, counters), ...controlSeries(source, counters)];
}

/** What the receive loops counted: packets, bytes, flows, drops, alerts, rule hits. */
function trafficSeries(source: MetricsSource, counters: CounterView): MetricDefinition[] {
  const slot = (name: string, help: string, index: number): MetricDefinition => ({
    name,
    help,
    type: "counter",
    read: () => counters.total(index),
  });
  return [
    slot(PrometheusMetric.packetsReceived, "GENEVE datagrams received", Counter.received),
    slot(PrometheusMetric.bytesReceived, "GENEVE bytes received", Counter.bytesReceived),
    slot(PrometheusMetric.packetsForwarded, "datagrams returned to the GWLB", Counter.forwarded),
    slot(PrometheusMetric.bytesForwarded, "bytes returned to the GWLB", Counter.bytesForwarded),
    slot(PrometheusMetric.sendErrors, "datagrams the socket failed to send", Counter.sendErrors),
    slot(PrometheusMetric.flowsCreated, "flows admitted to the flow table", Counter.flowsCreated),
    slot(PrometheusMetric.flowsEvicted, "flows removed after their idle timeout", Counter.flowsEvicted),
    slot(
      PrometheusMetric.securityEventsSuppressed,
      "security events counted but not logged (sampling)",
      Counter.eventsSuppressed,
    ),
    {
      name: PrometheusMetric.socketDrops,
      help: "datagrams the kernel dropped before the appliance read them (receive buffer full)",
      type: "counter",
      read: () => source.socketDrops(),
    },
    {
      name: PrometheusMetric.packetsDropped,
      help: "datagrams not returned, by reason",
      type: "counter",
      labels: ["reason"],
      read: () => DROP_REASONS.map((reason, i) => [{ reason }, counters.drops(i)]),
    },
    {
      name: PrometheusMetric.alerts,
      help: "checks that fired with action alert (packet forwarded), by reason",
      type: "counter",
      labels: ["reason"],
      read: () => ALERT_REASONS.map((reason) => [{ reason }, counters.alerts(DROP_REASONS.indexOf(reason))]),
    },
    {
      name: PrometheusMetric.ruleHits,
      help: "packets matched by each custom rule",
      type: "counter",
      labels: ["rule"],
      read: () => source.ruleNames().map((rule, i) => [{ rule }, counters.rule(i)]),
    },
  ];
}

/** The state of the appliance around the loops: flows per loop, policy, health, stalls, I/O backends. */
function controlSeries(source: MetricsSource, counters: CounterView): MetricDefinition[] {
  const perWorker = (read: (worker: number) => number) => () =>
    Array.from({ length: counters.workers }, (_, w): [Labels, number] => [{ worker: String(w) }, read(w)]);
  return [
    {
      name: PrometheusMetric.activeFlows,
      help: "flows in the flow tables, per worker",
      type: "gauge",
      labels: ["worker"],
      read: perWorker((w) => counters.of(w, Counter.activeFlows)),
    },
    {
      name: PrometheusMetric.policyReloads,
      help: "policies loaded",
      type: "counter",
      read: () => source.policy().reloads,
    },
    {
      name: PrometheusMetric.policyReloadFailures,
      help: "policy documents rejected or unreadable",
      type: "counter",
      read: () => source.policy().failures,
    },
    {
      name: PrometheusMetric.policyGeneration,
      help: "generation of the policy in force",
      type: "gauge",
      read: () => source.policy().generation,
    },
    { name: PrometheusMetric.workers, help: "receive loops", type: "gauge", read: () => counters.workers },
    {
      name: PrometheusMetric.workerStalled,
      help: "1 when a receive loop stopped making progress",
      type: "gauge",
      labels: ["worker"],
      read: () => {
        const stalled = new Set(source.health().stalledWorkers);
        return perWorker((w) => flag(stalled.has(w)))();
      },
    },
    {
      name: PrometheusMetric.socketReceiveQueue,
      help: "bytes waiting in the GENEVE sockets' receive queues",
      type: "gauge",
      read: () => source.receiveQueueBytes(),
    },
    {
      name: PrometheusMetric.forwardingStalled,
      help: "1 while packets are lost before inspection (stopped loop or kernel receive drops)",
      type: "gauge",
      read: () => flag(source.forwardingStalled()),
    },
    {
      name: PrometheusMetric.healthy,
      help: "1 while /healthz answers 200",
      type: "gauge",
      read: () => flag(source.health().healthy),
    },
    {
      name: PrometheusMetric.draining,
      help: "1 while draining after SIGTERM",
      type: "gauge",
      read: () => flag(source.health().draining),
    },
    {
      name: PrometheusMetric.ioBackend,
      help: "receive loops by I/O backend (native addon, or dgram: the fallback) and sender (udp, raw)",
      type: "gauge",
      labels: ["backend", "sender"],
      read: () =>
        Object.entries(IoBackendCode).flatMap(([backend, code]) =>
          Object.entries(SenderCode)
            .map(([sender, senderCode]): [Labels, number] => [
              { backend, sender },
              counters.loops(code, senderCode),
            ])
            .filter(([, loops]) => loops > 0),
        ),
    },
  ];
}

function register(registry: client.Registry, definition: MetricDefinition): void {
  const { name, help, labels = [], read } = definition;
  const counter = definition.type === "counter";
  const Metric = counter ? client.Counter : client.Gauge;
  new Metric({
    name,
    help,
    labelNames: labels,
    registers: [registry],
    collect(this: client.Counter | client.Gauge) {
      this.reset();
      const reading = read();
      const write = (labels: Labels, value: number) =>
        counter ? (this as client.Counter).inc(labels, value) : (this as client.Gauge).set(labels, value);
      if (typeof reading === "number") write({}, reading);
      else for (const [labels, value] of reading) write(labels, value);
    },
  });
}

export function createRegistry(source: MetricsSource): client.Registry {
  const registry = new client.Registry();
  const counters = new CounterView(source.counters, source.workers);
  for (const definition of definitions(source, counters)) register(registry, definition);
  registry.registerMetric(processingHistogram(counters) as unknown as client.Metric);
  return registry;
}

/** The processing-time histogram is already bucketed by the loops; expose it as is. */
function processingHistogram(counters: CounterView) {
  const name = PrometheusMetric.processingSeconds;
  return {
    name,
    help: "time to inspect and hand one datagram to the socket",
    type: "histogram",
    aggregator: "sum",
    collect: undefined,
    reset() {},
    async get() {
      const values: { value: number; labels: Record<string, string | number>; metricName: string }[] = [];
      let cumulative = 0;
      for (const [b, count] of counters.buckets().entries()) {
        cumulative += count;
        const le = b < PROCESSING_BUCKETS.length ? PROCESSING_BUCKETS[b] : "+Inf";
        values.push({ value: cumulative, labels: { le }, metricName: `${name}_bucket` });
      }
      values.push({
        value: counters.total(Counter.processingSum) / 1000,
        labels: {},
        metricName: `${name}_sum`,
      });
      values.push({
        value: counters.total(Counter.processingCount),
        labels: {},
        metricName: `${name}_count`,
      });
      return { name, help: this.help, type: "histogram", values, aggregator: "sum" };
    },
  };
}
