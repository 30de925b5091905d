/**
 * Starts and watches the receive loops (worker threads), hands them each new policy, relays their
 * security events, and tells the health check whether every loop is bound, has the policy and is alive.
 */
import { Worker } from "node:worker_threads";
import type { Policy } from "../../contracts/policy.ts";
import { allocateCounters, Counter, workerCounters } from "../dataplane/counters.ts";
import type { SecurityEvent } from "../dataplane/inspector.ts";
import type { IoBackend } from "../dataplane/io/receive-loop.ts";
import type { FromWorker, ToWorker, WorkerOptions } from "../dataplane/worker.ts";
import type { ApplianceConfig } from "./config.ts";
import type { Logger } from "./logger.ts";

interface Slot {
  worker: Worker | null;
  listening: boolean;
  generation: number;
  closing: boolean;
}

const RESTART_DELAY_MS = 500;

/** SO_REUSEPORT on dgram sockets arrived in Node 22.12 (and 23.1). */
export function reusePortSupported(version = process.versions.node): boolean {
  const [major, minor] = version.split(".").map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

export class WorkerPool {
  readonly size: number;
  readonly counters: SharedArrayBuffer;
  private readonly slots: Slot[];
  private readonly entry: string | URL;
  private readonly config: ApplianceConfig;
  /** The receive loops' I/O, decided once at start-up (control/io-backend.ts). */
  backend: IoBackend = "dgram";
  private readonly logger: Logger;
  private readonly onEvent: (event: SecurityEvent, worker: number) => void;
  /** Called when a receive loop is listening (first start or restart). */
  onListening: (worker: number) => void = () => {};
  private policy: { policy: Policy; generation: number } | null = null;
  private closing = false;

  constructor(options: {
    entry: string | URL;
    config: ApplianceConfig;
    logger: Logger;
    onEvent: (event: SecurityEvent, worker: number) => void;
  }) {
    this.entry = options.entry;
    this.config = options.config;
    this.logger = options.logger;
    this.onEvent = options.onEvent;
    let size = options.config.workers;
    if (size > 1 && !reusePortSupported()) {
      this.logger.warn(
        { event: "workers_reduced", requested: size, node: process.versions.node },
        `Node ${process.versions.node} has no SO_REUSEPORT for UDP (needs >= 22.12): running 1 worker instead of ${size}`,
      );
      size = 1;
    }
    this.size = size;
    this.counters = allocateCounters(size);
    this.slots = Array.from({ length: size }, () => ({
      worker: null,
      listening: false,
      generation: 0,
      closing: false,
    }));
  }

  start(): void {
    for (let i = 0; i < this.size; i++) this.spawn(i);
  }

  private spawn(index: number): void {
    const data: WorkerOptions = {
      role: "dataplane",
      index,
      host: this.config.geneve.host,
      port: this.config.geneve.port,
      returnPort: this.config.returnPort,
      reusePort: this.size > 1,
      socketBufferBytes: this.config.socketBufferBytes,
      counters: this.counters,
      backend: this.backend,
      sender: this.config.sender,
    };
    const worker = new Worker(this.entry, { workerData: data, name: `dataplane-${index}` });
    const slot = this.slots[index];
    slot.worker = worker;
    slot.listening = false;
    slot.generation = 0;
    worker.on("message", (message: FromWorker) => this.onMessage(index, message));
    worker.on("error", (error) => {
      this.logger.error(
        { event: "worker_error", worker: index, error: error.stack },
        `worker ${index} failed`,
      );
    });
    worker.on("exit", (code) => {
      slot.worker = null;
      slot.listening = false;
      workerCounters(this.counters, index)[Counter.bound] = 0;
      if (this.closing || slot.closing) return;
      this.logger.error(
        { event: "worker_exit", worker: index, code },
        `worker ${index} exited (${code}); restarting`,
      );
      setTimeout(() => {
        if (!this.closing) this.spawn(index);
      }, RESTART_DELAY_MS);
    });
    if (this.policy) this.send(index, { type: "policy", ...this.policy });
  }

  private onMessage(index: number, message: FromWorker): void {
    const slot = this.slots[index];
    switch (message.type) {
      case "listening":
        slot.listening = true;
        this.logger.info(
          { event: "listening", worker: index, ...message, type: undefined },
          `worker ${index} receiving GENEVE on ${message.address}:${message.port}`,
        );
        this.onListening(index);
        break;
      case "policy-applied":
        slot.generation = message.generation;
        break;
      case "event":
        this.onEvent(message.event, index);
        break;
      case "error":
        this.logger.error({ event: "worker_error", worker: index }, message.message);
        break;
      case "closed":
        break;
    }
  }

  private send(index: number, message: ToWorker): void {
    this.slots[index].worker?.postMessage(message);
  }

  setPolicy(policy: Policy, generation: number): void {
    this.policy = { policy, generation };
    for (let i = 0; i < this.size; i++) this.send(i, { type: "policy", policy, generation });
  }

  /** Every loop bound and running the newest policy. */
  ready(): boolean {
    const generation = this.policy?.generation ?? -1;
    return this.slots.every((slot) => slot.listening && slot.generation === generation);
  }

  /** Indexes of loops whose heartbeat is older than `stallMs`. */
  stalled(stallMs: number, now = Date.now()): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.size; i++) {
      const counters = workerCounters(this.counters, i);
      if (this.slots[i].listening && now - counters[Counter.heartbeat] > stallMs) out.push(i);
    }
    return out;
  }

  async close(timeoutMs = 2000): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.slots.map(async (slot) => {
        const worker = slot.worker;
        if (!worker) return;
        slot.closing = true;
        const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
        worker.postMessage({ type: "close" } satisfies ToWorker);
        const timer = setTimeout(() => void worker.terminate(), timeoutMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}
