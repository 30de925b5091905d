/**
 * The appliance process: wires the policy source, the receive loops, the health/metrics server, EMF
 * output and the signal-driven lifecycle (SIGHUP reload, SIGTERM drain) described in DESIGN.md.
 */
import type { Server } from "node:http";
import { SSMClient } from "@aws-sdk/client-ssm";
import { missingNodeFlags } from "../contracts/appliance-runtime.ts";
import { type ApplianceConfig, parseConfig } from "./control/config.ts";
import { pinReceiveLoops } from "./control/cpu-affinity.ts";
import { type EmfSnapshot, emfLine, snapshot } from "./control/emf.ts";
import { type HealthState, startHttpServer } from "./control/http-server.ts";
import { decideIoBackend } from "./control/io-backend.ts";
import { createLogger, type Logger } from "./control/logger.ts";
import { createRegistry } from "./control/metrics.ts";
import { FilePolicySource, type PolicySource, SsmPolicySource } from "./control/policy-sources.ts";
import { PolicyStore } from "./control/policy-store.ts";
import { socketStats } from "./control/socket-stats.ts";
import { WorkerPool } from "./control/worker-pool.ts";
import { Counter, workerCounters } from "./dataplane/counters.ts";

const STALL_CHECK_MS = 500;
/** A receive backlog above this at consecutive checks means the loops are not keeping up. */
const BACKLOG_BYTES = 1 << 20;
const BACKLOG_CHECKS = 2;

export class Daemon {
  private readonly config: ApplianceConfig;
  private readonly logger: Logger;
  private readonly pool: WorkerPool;
  private readonly store: PolicyStore;
  private readonly source: PolicySource;
  private server: Server | null = null;
  private draining = false;
  private stalledWorkers: number[] = [];
  private stalledDuringInterval = false;
  /**
   * Forwarding is "stalled" when a receive loop stopped (stale heartbeat), the kernel dropped datagrams
   * because the loops could not keep up, or a backlog of more than 1 MiB sat in the receive queues at
   * consecutive checks (packets held back for hundreds of milliseconds: as bad as lost for live video).
   * Only the first makes /healthz fail; an overloaded appliance that said 503 would push its flows onto
   * its neighbours, so overload is left to the metric (the healer's stall alarm) and to scaling.
   */
  private forwardingStalled = false;
  /** Kernel receive-buffer drops on our sockets, accumulated so a restarted socket never lowers it. */
  private socketDrops = 0;
  private lastSocketDropsReading = 0;
  private receiveQueueBytes = 0;
  private backlogStreak = 0;
  private timers: NodeJS.Timeout[] = [];
  private lastEmf: EmfSnapshot | null = null;
  private exitCode = 0;
  private finished: Promise<number>;
  private finish: (code: number) => void = () => {};

  constructor(config: ApplianceConfig, workerEntry: string | URL, logger = createLogger(config.logLevel)) {
    this.config = config;
    this.logger = logger;
    this.finished = new Promise((resolve) => {
      this.finish = resolve;
    });
    this.pool = new WorkerPool({
      entry: workerEntry,
      config,
      logger,
      onEvent: (event, worker) =>
        logger.warn({ event: "security", security: event, worker }, `${event.kind}: ${event.reason}`),
    });
    this.store = new PolicyStore(logger, {
      onApplied: (policy, generation) => this.pool.setPolicy(policy, generation),
    });
    this.source = config.policySsm
      ? new SsmPolicySource({
          client: new SSMClient({}),
          name: config.policySsm,
          pollSeconds: config.policyPollSeconds,
        })
      : new FilePolicySource(config.policyFile!);
  }

  health(): HealthState {
    if (this.draining) return { healthy: false, status: "draining" };
    if (!this.store.current)
      return { healthy: false, status: "no-policy", detail: this.store.lastError ?? undefined };
    if (!this.pool.ready()) return { healthy: false, status: "starting" };
    if (this.stalledWorkers.length > 0) {
      return { healthy: false, status: "stalled", detail: `workers ${this.stalledWorkers.join(",")}` };
    }
    return { healthy: true, status: "serving" };
  }

  async start(): Promise<void> {
    const { config, logger } = this;
    logger.info(
      {
        event: "starting",
        node: process.versions.node,
        geneve: `${config.geneve.host}:${config.geneve.port}`,
        health: `${config.health.host}:${config.health.port}`,
        policy: this.source.description,
        workers: this.pool.size,
        sender: config.sender,
        nodeFlags: process.execArgv,
      },
      "stream-intel-appliance starting",
    );
    const missing = missingNodeFlags();
    if (missing.length > 0)
      logger.warn(
        { event: "node_flags", missing },
        `node was started without ${missing.join(" ")}: expect receive-loop stalls of several ms under load (see contracts/appliance-runtime.ts)`,
      );
    const io = decideIoBackend(config);
    this.pool.backend = io.backend;
    if (io.fallback)
      logger.warn(
        { event: "io_backend", backend: io.backend, sender: config.sender, fallback: io.fallback },
        `native I/O addon unavailable, receive loops run on Node's dgram: ${io.fallback}`,
      );
    else
      logger.info(
        { event: "io_backend", backend: io.backend, sender: config.sender, addon: io.addon },
        `receive loops on the ${io.backend} I/O backend, ${config.sender} sender`,
      );
    const registry = createRegistry({
      counters: this.pool.counters,
      workers: this.pool.size,
      ruleNames: () => this.store.current?.rules.map((r) => r.name) ?? [],
      policy: () => ({
        reloads: this.store.reloads,
        failures: this.store.failures,
        generation: this.store.generation,
      }),
      health: () => ({
        healthy: this.health().healthy,
        draining: this.draining,
        stalledWorkers: this.stalledWorkers,
      }),
      socketDrops: () => this.socketDrops,
      forwardingStalled: () => this.forwardingStalled,
      receiveQueueBytes: () => this.receiveQueueBytes,
    });
    this.server = await startHttpServer({ ...config.health, health: () => this.health(), registry });
    if (config.cpuAffinity === "auto") {
      this.pool.onListening = () => {
        // Threads of a (re)started loop exist now: place them.
        const result = pinReceiveLoops(this.pool.size);
        if (result.pinned)
          logger.info({ event: "cpu_affinity", ...result }, "receive loops pinned to their own CPUs");
        else
          logger.warn(
            { event: "cpu_affinity", reason: result.reason },
            `receive loops not pinned: ${result.reason}`,
          );
      };
    }
    this.pool.start();
    this.source.start({
      onText: (text, origin) => this.store.offer(text, origin),
      onError: (error, origin) => this.store.sourceFailed(error, origin),
    });
    this.timers.push(
      setInterval(() => {
        const stalled = this.pool.stalled(config.stallSeconds * 1000);
        if (stalled.length > 0 && this.stalledWorkers.length === 0) {
          logger.error(
            { event: "stalled", workers: stalled },
            `receive loop(s) ${stalled.join(",")} stalled`,
          );
        }
        this.stalledWorkers = stalled;
        const dropsBefore = this.socketDrops;
        this.readSocketDrops();
        this.backlogStreak = this.receiveQueueBytes > BACKLOG_BYTES ? this.backlogStreak + 1 : 0;
        this.forwardingStalled =
          stalled.length > 0 || this.socketDrops > dropsBefore || this.backlogStreak >= BACKLOG_CHECKS;
        if (this.forwardingStalled) this.stalledDuringInterval = true;
      }, STALL_CHECK_MS),
    );
    if (config.emfIntervalSeconds > 0) {
      this.timers.push(setInterval(() => this.emitEmf(), config.emfIntervalSeconds * 1000));
    }
    process.on("SIGHUP", () => {
      logger.info({ event: "sighup" }, `SIGHUP: reloading policy from ${this.source.description}`);
      this.source.reload();
    });
    process.once("SIGTERM", () => void this.drain("SIGTERM"));
    process.on("SIGINT", () => {
      if (this.draining) void this.stop(0);
      else void this.drain("SIGINT");
    });
  }

  private readSocketDrops(): void {
    const stats = socketStats(this.config.geneve.host, this.config.geneve.port);
    if (stats === null) return;
    this.receiveQueueBytes = stats.receiveQueueBytes;
    const reading = stats.drops;
    if (reading > this.lastSocketDropsReading) this.socketDrops += reading - this.lastSocketDropsReading;
    else if (reading < this.lastSocketDropsReading) this.socketDrops += reading; // a socket was replaced
    this.lastSocketDropsReading = reading;
  }

  private emitEmf(): void {
    const view = new Float64Array(this.pool.counters);
    const now = snapshot(view, this.pool.size, this.store.failures, this.socketDrops);
    let flows = 0;
    for (let w = 0; w < this.pool.size; w++)
      flows += workerCounters(this.pool.counters, w)[Counter.activeFlows];
    if (this.lastEmf) {
      process.stdout.write(
        `${emfLine(Date.now(), this.config, this.lastEmf, now, flows, this.stalledDuringInterval || this.forwardingStalled)}\n`,
      );
    }
    this.lastEmf = now;
    this.stalledDuringInterval = false;
  }

  /** Unhealthy at once, keep forwarding for the drain period (GWLB's deregistration delay), then exit 0. */
  async drain(signal: string): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const seconds = this.config.drainSeconds;
    this.logger.info(
      { event: "draining", signal, seconds },
      `${signal}: draining for ${seconds} s, still forwarding`,
    );
    const timer = setTimeout(() => void this.stop(0), seconds * 1000);
    this.timers.push(timer);
  }

  async stop(code: number): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.source.stop();
    await this.pool.close();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections();
    this.logger.info({ event: "stopped", code }, "stream-intel-appliance stopped");
    this.exitCode = code;
    this.finish(code);
  }

  wait(): Promise<number> {
    return this.finished.then(() => this.exitCode);
  }
}

export async function main(argv: readonly string[], workerEntry: string | URL): Promise<void> {
  const config = parseConfig(argv);
  const daemon = new Daemon(config, workerEntry);
  try {
    await daemon.start();
  } catch (error) {
    process.stderr.write(`stream-intel-appliance: cannot start: ${(error as Error).message}\n`);
    process.exit(1);
  }
  process.exitCode = await daemon.wait();
}
