/**
 * The appliance process: wires the policy source, the receive loops, the health/metrics server, EMF
 * output and the signal-driven lifecycle (SIGHUP reload, SIGTERM drain) of docs/process-contract.md.
 */
import type { Server } from "node:http";
import { SSMClient } from "@aws-sdk/client-ssm";
import { missingNodeFlags } from "../contracts/appliance-runtime.ts";
import { type ApplianceConfig, parseConfig } from "./control/config.ts";
import { CounterView } from "./control/counter-view.ts";
import { pinReceiveLoops } from "./control/cpu-affinity.ts";
import { type EmfSnapshot, emfLine, snapshot } from "./control/emf.ts";
import { ForwardingMonitor } from "./control/forwarding-monitor.ts";
import { type HealthState, startHttpServer } from "./control/http-server.ts";
import { decideIoBackend } from "./control/io-backend.ts";
import { createLogger, type Logger } from "./control/logger.ts";
import { createRegistry } from "./control/metrics.ts";
import { FilePolicySource, type PolicySource, SsmPolicySource } from "./control/policy-sources.ts";
import { PolicyStore } from "./control/policy-store.ts";
import { WorkerPool } from "./control/worker-pool.ts";
import { Counter } from "./dataplane/counters.ts";

export class Daemon {
  private readonly config: ApplianceConfig;
  private readonly logger: Logger;
  private readonly pool: WorkerPool;
  private readonly store: PolicyStore;
  private readonly source: PolicySource;
  private readonly monitor: ForwardingMonitor;
  private server: Server | null = null;
  private draining = false;
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
    this.monitor = new ForwardingMonitor({
      stalledLoops: (stallMs) => this.pool.stalled(stallMs),
      stallSeconds: config.stallSeconds,
      geneve: config.geneve,
      logger,
    });
  }

  health(): HealthState {
    if (this.draining) return { healthy: false, status: "draining" };
    if (!this.store.current)
      return { healthy: false, status: "no-policy", detail: this.store.lastError ?? undefined };
    if (!this.pool.ready()) return { healthy: false, status: "starting" };
    const stalled = this.monitor.stalledWorkers;
    if (stalled.length > 0)
      return { healthy: false, status: "stalled", detail: `workers ${stalled.join(",")}` };
    return { healthy: true, status: "serving" };
  }

  async start(): Promise<void> {
    this.logStart();
    this.chooseIoBackend();
    this.server = await startHttpServer({
      ...this.config.health,
      health: () => this.health(),
      registry: this.createRegistry(),
    });
    if (this.config.cpuAffinity === "auto") this.pool.onListening = () => this.pinReceiveLoops();
    this.pool.start();
    this.source.start({
      onText: (text, origin) => this.store.offer(text, origin),
      onError: (error, origin) => this.store.sourceFailed(error, origin),
    });
    this.monitor.start();
    if (this.config.emfIntervalSeconds > 0) {
      this.timers.push(setInterval(() => this.emitEmf(), this.config.emfIntervalSeconds * 1000));
    }
    this.handleSignals();
  }

  private logStart(): void {
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
  }

  private chooseIoBackend(): void {
    const { config, logger } = this;
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
  }

  private createRegistry() {
    const monitor = this.monitor;
    return createRegistry({
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
        stalledWorkers: monitor.stalledWorkers,
      }),
      socketDrops: () => monitor.socketDrops,
      forwardingStalled: () => monitor.forwardingStalled,
      receiveQueueBytes: () => monitor.receiveQueueBytes,
    });
  }

  /** Threads of a (re)started loop exist now: place them. */
  private pinReceiveLoops(): void {
    const result = pinReceiveLoops(this.pool.size);
    if (result.pinned)
      this.logger.info({ event: "cpu_affinity", ...result }, "receive loops pinned to their own CPUs");
    else
      this.logger.warn(
        { event: "cpu_affinity", reason: result.reason },
        `receive loops not pinned: ${result.reason}`,
      );
  }

  private handleSignals(): void {
    process.on("SIGHUP", () => {
      this.logger.info({ event: "sighup" }, `SIGHUP: reloading policy from ${this.source.description}`);
      this.source.reload();
    });
    process.once("SIGTERM", () => void this.drain("SIGTERM"));
    process.on("SIGINT", () => {
      if (this.draining) void this.stop(0);
      else void this.drain("SIGINT");
    });
  }

  private emitEmf(): void {
    const counters = new CounterView(this.pool.counters, this.pool.size);
    const now = snapshot(counters, this.store.failures, this.monitor.socketDrops);
    const flows = counters.total(Counter.activeFlows);
    const stalled = this.monitor.takeIntervalStall();
    if (this.lastEmf) {
      process.stdout.write(`${emfLine(Date.now(), this.config, this.lastEmf, now, flows, stalled)}\n`);
    }
    this.lastEmf = now;
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
    this.monitor.stop();
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
