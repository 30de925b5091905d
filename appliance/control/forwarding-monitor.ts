/**
 * Watches whether packets get through: every half second it reads the receive loops' heartbeats and
 * the GENEVE sockets' kernel counters. Forwarding is "stalled" when a receive loop stopped (stale
 * heartbeat), the kernel dropped datagrams because the loops could not keep up, or a backlog of more
 * than 1 MiB sat in the receive queues at consecutive checks (packets held back for hundreds of
 * milliseconds: as bad as lost for live video). Only the first makes /healthz fail; an overloaded
 * appliance that said 503 would push its flows onto its neighbours, so overload is left to the metric
 * (the healer's stall alarm) and to scaling.
 */
import type { HostPort } from "./config.ts";
import type { Logger } from "./logger.ts";
import { socketStats } from "./socket-stats.ts";

const STALL_CHECK_MS = 500;
/** A receive backlog above this at consecutive checks means the loops are not keeping up. */
const BACKLOG_BYTES = 1 << 20;
const BACKLOG_CHECKS = 2;

export interface ForwardingMonitorOptions {
  /** The loops whose heartbeat is older than `stallMs` (WorkerPool.stalled). */
  stalledLoops(stallMs: number): number[];
  stallSeconds: number;
  /** The GENEVE sockets' address, to find them in /proc/net/udp. */
  geneve: HostPort;
  logger: Logger;
}

export class ForwardingMonitor {
  /** Receive loops stalled at the last check. */
  stalledWorkers: number[] = [];
  /** Whether forwarding was stalled at the last check. */
  forwardingStalled = false;
  /** Kernel receive-buffer drops on our sockets, accumulated so a restarted socket never lowers it. */
  socketDrops = 0;
  receiveQueueBytes = 0;
  private lastSocketDropsReading = 0;
  private backlogStreak = 0;
  private stalledDuringInterval = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly options: ForwardingMonitorOptions;

  constructor(options: ForwardingMonitorOptions) {
    this.options = options;
  }

  start(): void {
    this.timer = setInterval(() => this.check(), STALL_CHECK_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Whether forwarding was stalled at any check since the last call, or is now; the EMF interval's
   * stall flag. Starts the next interval.
   */
  takeIntervalStall(): boolean {
    const stalled = this.stalledDuringInterval || this.forwardingStalled;
    this.stalledDuringInterval = false;
    return stalled;
  }

  private check(): void {
    const stalled = this.options.stalledLoops(this.options.stallSeconds * 1000);
    if (stalled.length > 0 && this.stalledWorkers.length === 0) {
      this.options.logger.error(
        { event: "stalled", workers: stalled },
        `receive loop(s) ${stalled.join(",")} stalled`,
      );
    }
    this.stalledWorkers = stalled;
    const dropsBefore = this.socketDrops;
    this.readSocketStats();
    this.backlogStreak = this.receiveQueueBytes > BACKLOG_BYTES ? this.backlogStreak + 1 : 0;
    this.forwardingStalled =
      stalled.length > 0 || this.socketDrops > dropsBefore || this.backlogStreak >= BACKLOG_CHECKS;
    if (this.forwardingStalled) this.stalledDuringInterval = true;
  }

  private readSocketStats(): void {
    const stats = socketStats(this.options.geneve.host, this.options.geneve.port);
    if (stats === null) return;
    this.receiveQueueBytes = stats.receiveQueueBytes;
    const reading = stats.drops;
    if (reading > this.lastSocketDropsReading) this.socketDrops += reading - this.lastSocketDropsReading;
    else if (reading < this.lastSocketDropsReading) this.socketDrops += reading; // a socket was replaced
    this.lastSocketDropsReading = reading;
  }
}
