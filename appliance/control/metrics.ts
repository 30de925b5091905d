/**
 * Prometheus view of the shared counters. The receive loops only bump numbers in shared memory; this
 * module turns them into prom-client metrics at scrape time, summing over workers unless a series is
 * worth seeing per worker.
 */
import client from "prom-client";
import { ALERT_REASONS, DROP_REASONS, PrometheusMetric } from "../../contracts/appliance-metrics.ts";
import {
  ALERT_BASE,
  Counter,
  DROP_BASE,
  HISTOGRAM_BASE,
  IoBackendCode,
  PROCESSING_BUCKETS,
  RULE_BASE,
  SenderCode,
  SLOTS_PER_WORKER,
} from "../dataplane/counters.ts";

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

/** Sum of one slot over every worker. */
export function total(view: Float64Array, workers: number, slot: number): number {
  let sum = 0;
  for (let w = 0; w < workers; w++) sum += view[w * SLOTS_PER_WORKER + slot];
  return sum;
}

export function createRegistry(source: MetricsSource): client.Registry {
  const registry = new client.Registry();
  const view = new Float64Array(source.counters);
  const workers = source.workers;
  const sum = (slot: number) => total(view, workers, slot);

  const counter = (name: string, help: string, slot: number) =>
    new client.Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(sum(slot));
      },
    });
  counter(PrometheusMetric.packetsReceived, "GENEVE datagrams received", Counter.received);
  counter(PrometheusMetric.bytesReceived, "GENEVE bytes received", Counter.bytesReceived);
  counter(PrometheusMetric.packetsForwarded, "datagrams returned to the GWLB", Counter.forwarded);
  counter(PrometheusMetric.bytesForwarded, "bytes returned to the GWLB", Counter.bytesForwarded);
  counter(PrometheusMetric.sendErrors, "datagrams the socket failed to send", Counter.sendErrors);
  counter(PrometheusMetric.flowsCreated, "flows admitted to the flow table", Counter.flowsCreated);
  counter(PrometheusMetric.flowsEvicted, "flows removed after their idle timeout", Counter.flowsEvicted);
  counter(
    PrometheusMetric.securityEventsSuppressed,
    "security events counted but not logged (sampling)",
    Counter.eventsSuppressed,
  );

  new client.Counter({
    name: PrometheusMetric.socketDrops,
    help: "datagrams the kernel dropped before the appliance read them (receive buffer full)",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(source.socketDrops());
    },
  });
  new client.Counter({
    name: PrometheusMetric.packetsDropped,
    help: "datagrams not returned, by reason",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [i, reason] of DROP_REASONS.entries()) this.inc({ reason }, sum(DROP_BASE + i));
    },
  });
  new client.Counter({
    name: PrometheusMetric.alerts,
    help: "checks that fired with action alert (packet forwarded), by reason",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      this.reset();
      for (const reason of ALERT_REASONS)
        this.inc({ reason }, sum(ALERT_BASE + DROP_REASONS.indexOf(reason)));
    },
  });
  new client.Counter({
    name: PrometheusMetric.ruleHits,
    help: "packets matched by each custom rule",
    labelNames: ["rule"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [i, rule] of source.ruleNames().entries()) this.inc({ rule }, sum(RULE_BASE + i));
    },
  });
  new client.Gauge({
    name: PrometheusMetric.activeFlows,
    help: "flows in the flow tables, per worker",
    labelNames: ["worker"],
    registers: [registry],
    collect() {
      for (let w = 0; w < workers; w++)
        this.set({ worker: String(w) }, view[w * SLOTS_PER_WORKER + Counter.activeFlows]);
    },
  });
  const policyGauge = (
    name: string,
    help: string,
    pick: (p: ReturnType<MetricsSource["policy"]>) => number,
    kind: "counter" | "gauge",
  ) =>
    kind === "counter"
      ? new client.Counter({
          name,
          help,
          registers: [registry],
          collect() {
            this.reset();
            this.inc(pick(source.policy()));
          },
        })
      : new client.Gauge({
          name,
          help,
          registers: [registry],
          collect() {
            this.set(pick(source.policy()));
          },
        });
  policyGauge(PrometheusMetric.policyReloads, "policies loaded", (p) => p.reloads, "counter");
  policyGauge(
    PrometheusMetric.policyReloadFailures,
    "policy documents rejected or unreadable",
    (p) => p.failures,
    "counter",
  );
  policyGauge(
    PrometheusMetric.policyGeneration,
    "generation of the policy in force",
    (p) => p.generation,
    "gauge",
  );
  new client.Gauge({
    name: PrometheusMetric.workers,
    help: "receive loops",
    registers: [registry],
    collect() {
      this.set(workers);
    },
  });
  new client.Gauge({
    name: PrometheusMetric.workerStalled,
    help: "1 when a receive loop stopped making progress",
    labelNames: ["worker"],
    registers: [registry],
    collect() {
      const stalled = new Set(source.health().stalledWorkers);
      for (let w = 0; w < workers; w++) this.set({ worker: String(w) }, stalled.has(w) ? 1 : 0);
    },
  });
  new client.Gauge({
    name: PrometheusMetric.socketReceiveQueue,
    help: "bytes waiting in the GENEVE sockets' receive queues",
    registers: [registry],
    collect() {
      this.set(source.receiveQueueBytes());
    },
  });
  new client.Gauge({
    name: PrometheusMetric.forwardingStalled,
    help: "1 while packets are lost before inspection (stopped loop or kernel receive drops)",
    registers: [registry],
    collect() {
      this.set(source.forwardingStalled() ? 1 : 0);
    },
  });
  new client.Gauge({
    name: PrometheusMetric.healthy,
    help: "1 while /healthz answers 200",
    registers: [registry],
    collect() {
      this.set(source.health().healthy ? 1 : 0);
    },
  });
  new client.Gauge({
    name: PrometheusMetric.draining,
    help: "1 while draining after SIGTERM",
    registers: [registry],
    collect() {
      this.set(source.health().draining ? 1 : 0);
    },
  });
  new client.Gauge({
    name: PrometheusMetric.ioBackend,
    help: "receive loops by I/O backend (native addon, or dgram: the fallback) and sender (udp, raw)",
    labelNames: ["backend", "sender"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [backend, code] of Object.entries(IoBackendCode))
        for (const [sender, senderCode] of Object.entries(SenderCode)) {
          let loops = 0;
          for (let w = 0; w < workers; w++)
            if (
              view[w * SLOTS_PER_WORKER + Counter.ioBackend] === code &&
              view[w * SLOTS_PER_WORKER + Counter.sender] === senderCode
            )
              loops++;
          if (loops > 0) this.set({ backend, sender }, loops);
        }
    },
  });
  registry.registerMetric(processingHistogram(view, workers) as unknown as client.Metric);
  return registry;
}

/** The processing-time histogram is already bucketed by the loops; expose it as is. */
function processingHistogram(view: Float64Array, workers: number) {
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
      for (let b = 0; b <= PROCESSING_BUCKETS.length; b++) {
        cumulative += total(view, workers, HISTOGRAM_BASE + b);
        const le = b < PROCESSING_BUCKETS.length ? PROCESSING_BUCKETS[b] : "+Inf";
        values.push({ value: cumulative, labels: { le }, metricName: `${name}_bucket` });
      }
      values.push({
        value: total(view, workers, Counter.processingSum) / 1000,
        labels: {},
        metricName: `${name}_sum`,
      });
      values.push({
        value: total(view, workers, Counter.processingCount),
        labels: {},
        metricName: `${name}_count`,
      });
      return { name, help: this.help, type: "histogram", values, aggregator: "sum" };
    },
  };
}
