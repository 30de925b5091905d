/**
 * The lab: a GWLB emulator in front of N real appliances, the sources that feed it and the sink
 * behind it. Scenarios use this to run traffic, break things and read what happened.
 */
import path from "node:path";
import { performance } from "node:perf_hooks";
import { PrometheusMetric } from "../../contracts/appliance-metrics.ts";
import type { PolicyInput } from "../../contracts/policy.ts";
import { streamDestination, streamSource } from "./addressing.ts";
import { type ApplianceHandle, Fleet } from "./appliances/fleet.ts";
import { writePolicyFile } from "./appliances/policy-file.ts";
import { byLabel, nonZero, type Sample, sum } from "./appliances/prometheus.ts";
import { type Flow, type FlowSpec, GwlbEmulator } from "./gwlb/emulator.ts";
import { StreamStats } from "./sink/sink.ts";
import { FFMPEG_SSRC, type Source, startFfmpeg, syntheticSource } from "./sources.ts";

export interface LabOptions {
  appliances: number;
  streams: number;
  bitrate: number;
  quick: boolean;
  runDir: string;
  policy: PolicyInput;
  healthIntervalMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  deregistrationDelayMs: number;
  drainSeconds: number;
  /** Where clean streams come from: the synthetic muxer, or one real ffmpeg encoder fanned out. */
  source: "synthetic" | "ffmpeg";
  /** Loopback addresses of the emulator and the appliances, when not the defaults of addressing.ts
   * (a second lab on the same host, e.g. a test beside the scenario tests). */
  addresses?: { emulator: string; appliance: (index: number) => string };
}

export interface LabEvent {
  /** Seconds since the lab started. */
  at: number;
  message: string;
}

export type DeliveryListener = (flow: Flow, payload: Buffer, latencyMs: number) => void;

const PUMP_MS = 2;

export class Lab {
  readonly options: LabOptions;
  readonly fleet: Fleet;
  readonly emulator: GwlbEmulator;
  readonly events: LabEvent[] = [];
  /** Told of every event as it happens (the dashboard's timeline). */
  readonly eventListeners = new Set<(event: LabEvent) => void>();
  /** Told of every delivered payload, beside the scenario's own observer (the MediaLive stand-in). */
  readonly deliveryListeners = new Set<DeliveryListener>();
  readonly policyFile: string;
  readonly startedAt = performance.now();
  private sources: Source[] = [];
  private pump: NodeJS.Timeout | null = null;
  private nextPort = 30_000;

  constructor(options: LabOptions) {
    this.options = options;
    this.policyFile = path.join(options.runDir, "policy.json");
    this.writePolicy(options.policy);
    this.fleet = new Fleet({
      count: options.appliances,
      policyFile: this.policyFile,
      logDir: options.runDir,
      drainSeconds: options.drainSeconds,
      address: options.addresses?.appliance,
    });
    this.emulator = new GwlbEmulator({
      address: options.addresses?.emulator,
      targets: this.fleet.appliances.map((a) => ({ address: a.address, healthUrl: a.healthUrl })),
      healthIntervalMs: options.healthIntervalMs,
      healthyThreshold: options.healthyThreshold,
      unhealthyThreshold: options.unhealthyThreshold,
      deregistrationDelayMs: options.deregistrationDelayMs,
      onDeliver: (flow, payload, latencyMs) => this.deliver(flow, payload, latencyMs),
      onEvent: (message) => this.event(message),
    });
  }

  now(): number {
    return performance.now();
  }

  event(message: string): void {
    const event = { at: this.elapsedSeconds(), message };
    this.events.push(event);
    for (const listener of this.eventListeners) listener(event);
  }

  /** Seconds since the lab started, the time base of events and the dashboard's charts. */
  elapsedSeconds(): number {
    return (this.now() - this.startedAt) / 1000;
  }

  /** Writes the policy the appliances read (write + rename, so a reader never sees half a file). */
  writePolicy(policy: PolicyInput): void {
    writePolicyFile(this.policyFile, policy);
  }

  async start(): Promise<void> {
    this.fleet.startAll();
    await Promise.all(this.fleet.appliances.map((a) => this.fleet.waitHealthy(a.index)));
    await this.emulator.start();
    await this.waitFor(
      () => this.emulator.healthyCount() === this.options.appliances,
      "every target healthy",
      15_000,
    );
    this.pump = setInterval(() => this.tick(), PUMP_MS);
  }

  async stop(): Promise<void> {
    if (this.pump) clearInterval(this.pump);
    for (const source of this.sources) source.stop?.();
    this.sources = [];
    await this.emulator.stop();
    await this.fleet.stopAll();
  }

  async waitFor(
    condition: () => boolean | Promise<boolean>,
    what: string,
    timeoutMs: number,
  ): Promise<number> {
    const start = this.now();
    while (this.now() - start < timeoutMs) {
      if (await condition()) return this.now() - start;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  private tick(): void {
    const now = this.now();
    for (const source of this.sources) {
      if (source.intervalMs <= 0) continue;
      // Catch up if the event loop was late, but never burst more than 50 ms worth.
      if (now - source.nextDue > 50) source.nextDue = now - 50;
      while (source.nextDue <= now) {
        const payload = source.next(source.nextDue);
        if (payload) {
          this.emulator.send(source.flow, payload);
          source.sent++;
        }
        source.nextDue += source.intervalMs;
      }
    }
  }

  private deliver(flow: Flow, payload: Buffer, latencyMs: number): void {
    // The stream's own packets go to its statistics; anything else on the flow (a hijacker's
    // packets share the 5-tuple) is for the scenario's observer to classify.
    const source = this.statsByFlow.get(flow);
    if (source?.stats && payload.length >= 12 && payload.readUInt32BE(8) === source.ssrc)
      source.stats.receive(payload, latencyMs);
    this.onDeliver?.(flow, payload, latencyMs);
    for (const listener of this.deliveryListeners) listener(flow, payload, latencyMs);
  }

  private readonly statsByFlow = new Map<Flow, Source>();

  /** Extra observer for scenarios that classify what came back (e.g. hijack packets by SSRC). */
  onDeliver: ((flow: Flow, payload: Buffer, latencyMs: number) => void) | null = null;

  async flow(spec: Omit<FlowSpec, "srcPort"> & { srcPort?: number }): Promise<Flow> {
    return this.emulator.addFlow({ ...spec, srcPort: spec.srcPort ?? this.nextPort++ });
  }

  /**
   * Starts `count` clean streams at the lab bitrate (synthetic, or one ffmpeg encoder whose packets
   * every flow carries) for about `seconds`; returns their sources.
   */
  async cleanStreams(count: number, seconds: number, prefix = "stream"): Promise<Source[]> {
    const flows: Flow[] = [];
    for (let i = 0; i < count; i++) {
      const destination = streamDestination(i);
      flows.push(
        await this.flow({
          src: streamSource(i),
          dst: destination.address,
          dstPort: destination.port,
          label: `${prefix}-${i + 1}`,
          attack: false,
        }),
      );
    }
    let out: Source[];
    if (this.options.source === "ffmpeg") {
      out = flows.map((flow) => ({
        flow,
        stats: new StreamStats(flow.label),
        ssrc: FFMPEG_SSRC,
        intervalMs: 0,
        nextDue: 0,
        sent: 0,
        next: () => null,
      }));
      const encoder = await startFfmpeg(seconds, Math.round(this.options.bitrate / 1000), (packet) => {
        for (const source of out) {
          if (!this.sources.includes(source)) continue;
          this.emulator.send(source.flow, packet);
          source.sent++;
        }
      });
      out[0].stop = encoder.stop;
    } else {
      out = flows.map((flow, i) =>
        syntheticSource(
          flow,
          new StreamStats(flow.label),
          this.options.bitrate,
          0x1000 + flow.id,
          this.now() + ((i * 7) % 20),
        ),
      );
    }
    for (const source of out) this.addSource(source);
    return out;
  }

  /** The sources sending now (scenario streams, attacks, the pipeline's outputs). */
  activeSources(): readonly Source[] {
    return this.sources;
  }

  addSource(source: Source): void {
    this.sources.push(source);
    if (source.stats && !this.statsByFlow.has(source.flow)) this.statsByFlow.set(source.flow, source);
  }

  /** Stops the sources now; their statistics keep counting what is still in flight. */
  removeSources(sources: readonly Source[]): void {
    for (const s of sources) s.stop?.();
    this.sources = this.sources.filter((s) => !sources.includes(s));
  }

  /** Forgets the sources' flows once a scenario is over. */
  forget(sources: readonly Source[]): void {
    for (const s of sources) if (this.statsByFlow.get(s.flow) === s) this.statsByFlow.delete(s.flow);
  }

  /** Sum of each appliance's /metrics, so scenario deltas count every appliance. */
  async metrics(): Promise<Sample[]> {
    const all = await Promise.all(this.fleet.appliances.map((a) => this.fleet.metrics(a.index)));
    return all.flat();
  }

  async dropsByReason(): Promise<Record<string, number>> {
    return nonZero(byLabel(await this.metrics(), PrometheusMetric.packetsDropped, "reason"));
  }

  async policyGenerations(): Promise<number[]> {
    return Promise.all(
      this.fleet.appliances.map(async (a) =>
        sum(await this.fleet.metrics(a.index), PrometheusMetric.policyGeneration),
      ),
    );
  }

  /** Brings a stopped appliance back (the ASG's replacement) and registers it with the emulator. */
  async replace(appliance: ApplianceHandle): Promise<void> {
    this.fleet.start(appliance.index);
    await this.fleet.waitHealthy(appliance.index);
    this.emulator.register(appliance.index);
    await this.waitFor(
      () => this.emulator.targets[appliance.index].state === "healthy",
      `target ${appliance.index + 1} healthy`,
      10_000,
    );
  }
}
